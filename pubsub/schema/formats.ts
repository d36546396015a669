/**
 * The two schema formats the registry takes, behind one small interface: parse (and refuse a bad schema), a canonical
 * form (the same schema registered twice gets the same id), "can a reader of this schema read data written with that
 * one" (compatibility), and payload encode / decode / validate.
 *
 * AVRO: avsc does everything: `reader.createResolver(writer)` throws exactly when Avro's schema resolution rules say
 * the reader cannot read the writer's data (a field without a default missing from the writer, a type that does not
 * promote...), so compatibility is avsc's verdict, not ours.
 *
 * JSON (JSON Schema, draft-07 / 2019-09 keywords ajv 8 knows): ajv validates payloads. No package decides JSON Schema
 * compatibility, so a small structural rule set does, the same rules Confluent's JSON Schema checks apply to the
 * common keywords (type, properties, required, additionalProperties, enum, items): a reader accepts a writer when
 * every document the writer allows is one the reader allows. Anything those rules cannot compare (oneOf, $ref, if...)
 * is reported as incompatible unless the two are identical, never silently accepted.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import avro from 'avsc';

export type SchemaType = 'AVRO' | 'JSON';
export const SCHEMA_TYPES: readonly SchemaType[] = ['AVRO', 'JSON'];

export interface ParsedSchema {
  readonly type: SchemaType;
  /** The canonical text: equal for equal schemas, whatever their spacing or key order. */
  readonly canonical: string;
  /** Why a reader with this schema cannot read data written with `writer` (empty: it can). */
  readerIssues(writer: ParsedSchema): string[];
  /** Why `value` does not fit the schema (empty: it does). */
  validate(value: unknown): string[];
  encode(value: unknown): Buffer;
  /** Decodes data written with `writer` (default: this schema) as this schema reads it. */
  decode(data: Buffer, writer?: ParsedSchema): unknown;
}

/** A schema the registry refuses: not JSON, not a valid Avro / JSON Schema. */
export class InvalidSchema extends Error {}

export function parseSchema(text: string, type: SchemaType): ParsedSchema {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new InvalidSchema(`the schema is not JSON: ${(err as Error).message}`);
  }
  return type === 'AVRO' ? avroSchema(json) : jsonSchema(json);
}

function avroSchema(json: unknown): ParsedSchema {
  let t: avro.Type;
  try {
    t = avro.Type.forSchema(json as avro.Schema);
  } catch (err) {
    throw new InvalidSchema(`invalid Avro schema: ${(err as Error).message}`);
  }
  const self: ParsedSchema & { avro: avro.Type } = {
    type: 'AVRO',
    avro: t,
    // With defaults and aliases: two schemas differing only in a default are different versions (Avro's Parsing Canonical Form drops them).
    canonical: JSON.stringify(t.schema({ exportAttrs: true })),
    readerIssues(writer) {
      if (writer.type !== 'AVRO') return ['the writer schema is not Avro'];
      try {
        t.createResolver((writer as typeof self).avro);
        return [];
      } catch (err) {
        return [(err as Error).message];
      }
    },
    validate(value) {
      const issues: string[] = [];
      t.isValid(value, { errorHook: (path) => issues.push(`${path.join('.') || '(value)'} does not fit`) });
      return issues;
    },
    encode: (value) => t.toBuffer(value),
    decode(data, writer) {
      if (!writer || writer.canonical === self.canonical) return t.fromBuffer(data);
      return t.fromBuffer(data, t.createResolver((writer as typeof self).avro));
    },
  };
  return self;
}

const ajv = new Ajv({ allErrors: true, strict: false });

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

function jsonSchema(json: unknown): ParsedSchema {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new InvalidSchema('a JSON Schema is an object');
  let check: ValidateFunction;
  try {
    check = ajv.compile(json);
  } catch (err) {
    throw new InvalidSchema(`invalid JSON Schema: ${(err as Error).message}`);
  }
  const self: ParsedSchema & { json: JsonNode } = {
    type: 'JSON',
    json: json as JsonNode,
    canonical: canonicalJson(json),
    readerIssues(writer) {
      if (writer.type !== 'JSON') return ['the writer schema is not JSON Schema'];
      return accepts(self.json, (writer as typeof self).json, '');
    },
    validate(value) {
      return check(value) ? [] : (check.errors ?? []).map((e) => `${e.instancePath || '(value)'} ${e.message ?? 'is invalid'}`);
    },
    encode: (value) => Buffer.from(JSON.stringify(value)),
    decode: (data) => JSON.parse(data.toString('utf8')),
  };
  return self;
}

interface JsonNode {
  type?: string | string[];
  properties?: Record<string, JsonNode>;
  required?: string[];
  additionalProperties?: boolean | JsonNode;
  enum?: unknown[];
  items?: JsonNode;
  [k: string]: unknown;
}

const COMPARED = new Set(['type', 'properties', 'required', 'additionalProperties', 'enum', 'items', 'title', 'description', 'default', '$schema', '$id', 'examples']);

function types(n: JsonNode): Set<string> | undefined {
  if (n.type === undefined) return undefined;
  return new Set(Array.isArray(n.type) ? n.type : [n.type]);
}

/** Every document `writer` allows, `reader` allows too (the rules above); the reasons it does not, by JSON path. */
function accepts(reader: JsonNode, writer: JsonNode, path: string): string[] {
  const at = path || '(root)';
  const unknown = [...Object.keys(reader), ...Object.keys(writer)].filter((k) => !COMPARED.has(k));
  if (unknown.length) return canonicalJson(reader) === canonicalJson(writer) ? [] : [`${at}: cannot compare ${[...new Set(unknown)].join(', ')}`];
  const issues: string[] = [];
  const rt = types(reader);
  const wt = types(writer);
  if (rt) {
    if (!wt) issues.push(`${at}: the reader requires type ${[...rt].join('|')}, the writer allows any`);
    else for (const t of wt) if (!rt.has(t) && !(t === 'integer' && rt.has('number'))) issues.push(`${at}: type ${t} written, the reader takes ${[...rt].join('|')}`);
  }
  if (reader.enum) {
    if (!writer.enum) issues.push(`${at}: the reader has an enum, the writer does not`);
    else for (const v of writer.enum) if (!reader.enum.some((r) => canonicalJson(r) === canonicalJson(v))) issues.push(`${at}: enum value ${JSON.stringify(v)} written, not read`);
  }
  const rProps = reader.properties ?? {};
  const wProps = writer.properties ?? {};
  const wRequired = new Set(writer.required ?? []);
  for (const name of reader.required ?? []) {
    if (!wRequired.has(name)) issues.push(`${path}/${name}: required by the reader, ${name in wProps ? 'optional' : 'absent'} in the writer`);
  }
  const writerOpen = writer.additionalProperties !== false;
  for (const [name, w] of Object.entries(wProps)) {
    const r = rProps[name];
    if (r) issues.push(...accepts(r, w, `${path}/${name}`));
    else if (reader.additionalProperties === false) issues.push(`${path}/${name}: written, but the reader allows no property outside its list`);
  }
  for (const name of Object.keys(rProps)) {
    // The writer's open content model may carry this name with any value (Confluent: PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL).
    if (!(name in wProps) && writerOpen && Object.keys(rProps[name]!).some((k) => k === 'type' || k === 'enum' || k === 'properties')) {
      issues.push(`${path}/${name}: added by the reader, but the writer's open content model may carry it with another type`);
    }
  }
  if (reader.additionalProperties === false && writerOpen && writer.properties === undefined && wt?.has('object')) {
    issues.push(`${at}: the reader is closed, the writer open`);
  }
  if (reader.items && writer.items) issues.push(...accepts(reader.items, writer.items, `${path}/items`));
  else if (reader.items && wt?.has('array')) issues.push(`${path}/items: constrained by the reader only`);
  return issues;
}
