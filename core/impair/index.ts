export { Prng, randomSeed } from './prng.ts';
export { TOXIC_ATTRIBUTES, TOXIC_TYPES, parseToxic, type Stream, type Toxic, type ToxicInput, type ToxicType } from './toxics.ts';
export { TcpImpairmentProxy, startTcpProxy, describeToxic, type TcpProxyOptions, type TcpProxyStats } from './tcp/proxy.ts';
export { UdpImpairmentRelay, startUdpRelay, type DatagramRecord, type UdpRelayOptions, type UdpRelayStreamStats } from './udp/relay.ts';
export { parseImpairments, describeImpairments, type UdpImpairments, type GilbertElliott } from './udp/impairments.ts';
export { startControlApi, type ControlApiOptions, type RunningControlApi } from './control.ts';
