/**
 * The `wirelab up` rows of the pub/sub front doors, all on one shared broker. Created by the MQTT door with its rows
 * (the broker / native door adds the shared broker and its own rows here; the lead merges).
 */
import type { ServiceEntry } from '../core/registry.ts';
import type { Broker } from './broker/types.ts';
import { mqttServices } from './doors/mqtt/services.ts';

export function pubsubServices(broker: () => Promise<Broker>): ServiceEntry[] {
  return [...mqttServices(broker)];
}
