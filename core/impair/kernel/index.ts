export { KernelLink, kernelSupport, type KernelSupport, type Side } from './netns.ts';
