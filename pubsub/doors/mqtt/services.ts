/**
 * The MQTT door's rows for `wirelab up` (pubsub/services.ts lists them with the other doors): mqtt (base + 1883),
 * mqtts (base + 8883) and MQTT over WebSocket on its own port (base + 8083, path /mqtt). All three share one broker
 * and so one set of sessions and retained messages. Each `tryWith` is a command that works when pasted.
 */
import type { ServiceEntry } from '../../../core/registry.ts';
import type { RunningServer } from '../../../core/server.ts';
import { getTlsMaterial } from '../../../core/tls/index.ts';
import type { OnSharedBroker } from '../http/service.ts';
import type { Tracer } from '../../../core/trace/index.ts';
import { MQTT_WS_DEFAULT_PATH, startMqttServer } from './index.ts';
import type { MqttLimits } from './options.ts';

const sub = (args: string, topic: string): string => `mosquitto_sub ${args} -t '${topic}' -v -C 1 -W 10 & sleep 1; `;

/** `wirelab up --set mqtt.maxConnections=10` (bin/commands/up-config.ts) arrives as `limits`. */
type MqttStart = { host: string; port: number; tracer: Tracer; limits?: MqttLimits };

export function mqttServices(onSharedBroker: OnSharedBroker): ServiceEntry[] {
  let caPath = '';
  return [
    {
      name: 'mqtt',
      proto: 'mqtt',
      wellKnownPort: 1883,
      describe: 'MQTT 3.1.1 / 5 door of the pub/sub broker (QoS 0/1/2, retained, persistent sessions)',
      start: ({ host, port, tracer, limits }: MqttStart) => onSharedBroker((broker) => startMqttServer({ broker, host, port, tracer, limits }), tracer),
      tryWith: (s: RunningServer) => {
        const a = `-h ${s.host} -p ${s.port}`;
        return `${sub(a, 'demo/#')}mosquitto_pub ${a} -q 1 -t demo/hello -m hi; wait`;
      },
    },
    {
      name: 'mqtts',
      proto: 'mqtts',
      wellKnownPort: 8883,
      describe: 'MQTT over TLS (local CA) on the same broker',
      start: async ({ host, port, tracer, limits }: MqttStart) => {
        caPath = (await getTlsMaterial()).caCertPath;
        return onSharedBroker((broker) => startMqttServer({ broker, host, port, tracer, limits, tls: true }), tracer);
      },
      tryWith: (s: RunningServer) => {
        const a = `-h localhost -p ${s.port} --cafile ${caPath}`;
        return `${sub(a, 'demo/#')}mosquitto_pub ${a} -q 1 -t demo/tls -m hi; wait`;
      },
    },
    {
      name: 'mqtt-ws',
      proto: 'mqtt-websocket',
      wellKnownPort: 8083,
      describe: `MQTT over WebSocket (path ${MQTT_WS_DEFAULT_PATH}, subprotocol mqtt) on the same broker`,
      start: ({ host, port, tracer, limits }: MqttStart) => onSharedBroker((broker) => startMqttServer({ broker, host, port, tracer, limits, ws: { path: MQTT_WS_DEFAULT_PATH } }), tracer),
      tryWith: (s: RunningServer) =>
        `/usr/bin/python3 -c "import paho.mqtt.publish as p; p.single('demo/ws', 'hi', qos=1, hostname='${s.host}', port=${s.port}, transport='websockets')"`,
    },
  ];
}
