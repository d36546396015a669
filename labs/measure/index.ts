// Measurement helpers the labs share: they drive wirelab's clients against its servers, so they sit above both (a
// core module may not import a protocol). kernel-pair.ts spawns kernel-peer.ts inside a network namespace.
export { measureTcpMessages, tcpGuaranteeHeld, type TcpRunResult } from './tcp-messages.ts';
export { measureUdpEcho, type UdpRunResult } from './udp-echo.ts';
export { KernelTcpPair, openKernelTcpPair } from './kernel-pair.ts';
export { measureUdpMessages, type UdpStreamResult } from './udp-messages.ts';
