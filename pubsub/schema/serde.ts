/**
 * Producer and consumer sides of the registry, in Confluent's wire format: a message payload is
 *   0x00 (magic) | schema id (u32, big endian) | the value encoded with that schema (Avro binary, or JSON text)
 * The producer registers (or finds) its schema once and caches the id; the consumer fetches a writer's schema by the
 * id it reads, once per id, and decodes with its own reader schema when it has one (Avro schema resolution: a field
 * the writer lacked gets the reader's default).
 */
import { createHttpClient, type HttpClient } from '../../clients/http.ts';
import { ErrorCodes } from '../../core/errors.ts';
import { parseSchema, type ParsedSchema, type SchemaType } from './formats.ts';
import { SchemaRegistryError } from './registry.ts';

export const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

/** The registry's REST API as a client, with the id <-> schema caches producers and consumers keep. */
export class SchemaRegistryClient {
  readonly #url: string;
  readonly #http: HttpClient;
  readonly #byId = new Map<number, Promise<ParsedSchema>>();
  readonly #ids = new Map<string, Promise<number>>();
  /** Requests sent to the registry, by route ('register', 'byId', ...): the caches show in these. */
  readonly requests: Record<string, number> = {};

  private constructor(url: string, http: HttpClient) {
    this.#url = url.replace(/\/+$/, '');
    this.#http = http;
  }

  static async create(url: string): Promise<SchemaRegistryClient> {
    return new SchemaRegistryClient(url, await createHttpClient({}));
  }

  async #call<T>(what: string, method: string, path: string, body?: unknown): Promise<T> {
    this.requests[what] = (this.requests[what] ?? 0) + 1;
    const res = await this.#http.request(`${this.#url}${path}`, {
      method,
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json', accept: 'application/vnd.schemaregistry.v1+json, application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const value = res.json<Record<string, unknown>>();
    if (res.status >= 400) {
      const code = res.status === 404 ? ErrorCodes.SCHEMA_NOT_FOUND : res.status === 409 ? ErrorCodes.SCHEMA_INCOMPATIBLE : ErrorCodes.SCHEMA_INVALID;
      throw new SchemaRegistryError(code, res.status, Number(value.error_code ?? res.status), String(value.message ?? `HTTP ${res.status}`));
    }
    return value as T;
  }

  /** Registers the schema under the subject (or finds it), once per client: the id. Rejects 409 when incompatible. */
  register(subject: string, schema: string, schemaType: SchemaType = 'AVRO'): Promise<number> {
    const key = `${subject}\u0000${schemaType}\u0000${schema}`;
    let id = this.#ids.get(key);
    if (!id) {
      id = this.#call<{ id: number }>('register', 'POST', `/subjects/${encodeURIComponent(subject)}/versions`, { schema, schemaType }).then((r) => r.id);
      id.catch(() => this.#ids.delete(key));
      this.#ids.set(key, id);
    }
    return id;
  }

  /** The writer schema of an id, fetched once. */
  schemaById(id: number): Promise<ParsedSchema> {
    let s = this.#byId.get(id);
    if (!s) {
      s = this.#call<{ schema: string; schemaType?: SchemaType }>('byId', 'GET', `/schemas/ids/${id}`).then((r) => parseSchema(r.schema, r.schemaType ?? 'AVRO'));
      s.catch(() => this.#byId.delete(id));
      this.#byId.set(id, s);
    }
    return s;
  }

  /** Why the schema breaks the subject's level (empty: compatible). */
  async check(subject: string, schema: string, schemaType: SchemaType = 'AVRO'): Promise<string[]> {
    const r = await this.#call<{ is_compatible: boolean; messages?: string[] }>('check', 'POST', `/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest?verbose=true`, { schema, schemaType });
    return r.is_compatible ? [] : (r.messages ?? ['incompatible']);
  }

  async setCompatibility(subject: string, level: string): Promise<void> {
    await this.#call('config', 'PUT', `/config/${encodeURIComponent(subject)}`, { compatibility: level });
  }

  close(): Promise<void> {
    return this.#http.close();
  }
}

/** Frames an encoded value with the magic byte and the schema id. */
export function frame(id: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out[0] = MAGIC_BYTE;
  out.writeUInt32BE(id, 1);
  body.copy(out, HEADER_BYTES);
  return out;
}

/** The schema id of a framed payload; throws WL_ERR_SCHEMA_INVALID when it is not one. */
export function schemaIdOf(payload: Buffer): number {
  if (payload.length < HEADER_BYTES || payload[0] !== MAGIC_BYTE) {
    throw new SchemaRegistryError(ErrorCodes.SCHEMA_INVALID, 422, 42201, 'the payload does not start with the magic byte 0 and a schema id');
  }
  return payload.readUInt32BE(1);
}

/** A producer's serializer for one subject and schema: the schema is registered (or found) on first use. */
export function createSerializer(client: SchemaRegistryClient, subject: string, schema: string, schemaType: SchemaType = 'AVRO') {
  const parsed = parseSchema(schema, schemaType);
  return {
    /** Rejects with WL_ERR_SCHEMA_INVALID when the value does not fit the schema (nothing is sent). */
    async serialize(value: unknown): Promise<Buffer> {
      const issues = parsed.validate(value);
      if (issues.length) throw new SchemaRegistryError(ErrorCodes.SCHEMA_INVALID, 422, 42201, `the value does not fit the schema: ${issues.join('; ')}`);
      return frame(await client.register(subject, schema, schemaType), parsed.encode(value));
    },
  };
}

/**
 * A consumer's deserializer: the writer schema comes from the id in the payload; with a reader schema, values are
 * resolved to it (Avro), else read as written.
 */
export function createDeserializer(client: SchemaRegistryClient, readerSchema?: { schema: string; schemaType?: SchemaType }) {
  const reader = readerSchema ? parseSchema(readerSchema.schema, readerSchema.schemaType ?? 'AVRO') : undefined;
  return {
    async deserialize(payload: Buffer): Promise<{ value: unknown; schemaId: number }> {
      const schemaId = schemaIdOf(payload);
      const writer = await client.schemaById(schemaId);
      const body = payload.subarray(HEADER_BYTES);
      return { value: (reader ?? writer).decode(body, writer), schemaId };
    },
  };
}
