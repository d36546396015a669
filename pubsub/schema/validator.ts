/**
 * In-broker validation at publish (the course's "in-broker validation", Redpanda's data transforms): a broker
 * validator (BrokerOptions.validators) that reads the schema id of a framed payload, finds the schema in the registry
 * (in this process: no network call per message) and refuses what does not decode or does not fit.
 */
import type { PublishValidator } from '../broker/options.ts';
import type { SchemaRegistry } from './registry.ts';
import { schemaIdOf } from './serde.ts';

const HEADER_BYTES = 5;

/**
 * Messages to topics matching `pattern` must carry a registered schema id (Confluent framing) and a value that
 * decodes with that schema and fits it; with `subject`, the id must also be one of that subject's versions.
 */
export function schemaValidator(registry: SchemaRegistry, pattern: string, options: { subject?: string } = {}): PublishValidator {
  return {
    pattern,
    validate({ payload }) {
      let id: number;
      try {
        id = schemaIdOf(payload);
      } catch {
        return ['the payload carries no schema id (0x00 + u32 id)'];
      }
      let schema;
      try {
        schema = registry.byId(id);
      } catch {
        return [`schema id ${id} is not registered`];
      }
      if (options.subject !== undefined) {
        const ids = (() => {
          try {
            return registry.versions(options.subject!).map((v) => registry.get(options.subject!, v).id);
          } catch {
            return [];
          }
        })();
        if (!ids.includes(id)) return [`schema id ${id} is not a version of ${options.subject}`];
      }
      let value: unknown;
      try {
        value = schema.parsed.decode(payload.subarray(HEADER_BYTES));
      } catch (err) {
        return [`does not decode with schema ${id}: ${(err as Error).message}`];
      }
      return schema.parsed.validate(value);
    },
  };
}
