/** The native protocol's front doors: WebSocket (JSON text frames) and TCP (length-prefixed binary frames). */
export { startPubsubWsServer, PUBSUB_WS_PATH, type RunningPubsubWsServer } from './ws.ts';
export { startPubsubTcpServer, type RunningPubsubTcpServer } from './tcp.ts';
export { NATIVE_LIMIT_DEFAULTS, type NativeLimits, type NativeStats } from './connection.ts';
export type { NativeDoorOptions } from './options.ts';
