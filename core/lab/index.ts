export type { Finding, Lab, LabContext, LabDefinition, LabResult } from './types.ts';
export { defineLab } from './define.ts';
export { runLab, DEFAULT_LAB_TIMEOUT_MS, type RunLabOptions } from './runner.ts';
export { loadLab, loadAllLabs, labIds, LABS_DIR } from './load.ts';
export { LabReporter } from './report.ts';
export { describeParams, formatParam, paramHelp, parseParamFlags, resolveLabParams, type LabParamSpec, type LabParamSpecs, type LabParams } from './params.ts';
