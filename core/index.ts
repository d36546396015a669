// What a lab file of your own imports: `import { defineLab } from 'wirelab'`.
export { defineLab, type Lab, type LabContext, type LabDefinition } from './lab/index.ts';
export * from './trace/index.ts';
export type { RunningServer } from './server.ts';
export { WirelabError, ErrorCodes, HttpError, InvalidOptionError } from './errors.ts';
export { startTcpRelay } from './relay.ts';
export { captureAvailable, startCapture } from './capture/index.ts';
export { getTlsMaterial, tlsClientOptions, tlsServerOptions } from './tls/index.ts';
