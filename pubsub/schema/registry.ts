/**
 * A schema registry after the core of Confluent's: subjects with numbered versions, one global id per distinct schema
 * (the same schema under two subjects shares its id), a compatibility level per subject (or the global default)
 * checked on every registration, and lookups by id for consumers.
 *
 * Storage, as the course says ("inside the schema registry, you'll have a topic to stream the schemas") and as
 * Confluent does with `_schemas`: every change is a record appended to the topic `$schemas` of a pub/sub engine (acks
 * 'all'), and the registry rebuilds itself by reading that topic at open. Without an engine it lives in memory.
 */
import { ErrorCodes, WirelabError } from '../../core/errors.ts';
import { checkInt, checkOneOf, withDefaults } from '../../core/options.ts';
import type { Engine } from '../engines/types.ts';
import { InvalidSchema, parseSchema, SCHEMA_TYPES, type ParsedSchema, type SchemaType } from './formats.ts';

export const COMPATIBILITY_LEVELS = ['BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE', 'NONE'] as const;
export type Compatibility = (typeof COMPATIBILITY_LEVELS)[number];

/** A refusal with Confluent's numbers: `status` (HTTP) and `errorCode` (its `error_code`: 40401, 409, 42201...). */
export class SchemaRegistryError extends WirelabError {
  readonly errorCode: number;
  constructor(code: string, status: number, errorCode: number, message: string) {
    super(code, message, { status });
    this.name = 'SchemaRegistryError';
    this.errorCode = errorCode;
  }
}

const notFound = (errorCode: 40401 | 40402 | 40403, what: string): SchemaRegistryError =>
  new SchemaRegistryError(ErrorCodes.SCHEMA_NOT_FOUND, 404, errorCode, what);
const invalid = (errorCode: 42201 | 42202 | 42203, what: string): SchemaRegistryError =>
  new SchemaRegistryError(ErrorCodes.SCHEMA_INVALID, 422, errorCode, what);

export interface RegisteredSchema {
  subject: string;
  version: number;
  id: number;
  schemaType: SchemaType;
  schema: string;
}

export interface SchemaRegistryOptions {
  /** Keep the registry in this engine's `$schemas` topic (rebuilt from it at open). Default: in memory only. */
  engine?: Engine;
  /** The topic. Default '$schemas'. */
  topic?: string;
  /** The level for subjects without their own. Default 'BACKWARD' (Confluent's default). */
  compatibility?: Compatibility;
  /** Longest schema text accepted, bytes. Default 262,144. */
  maxSchemaBytes?: number;
  /** Subjects at most. Default 10,000. */
  maxSubjects?: number;
  /** Versions per subject at most. Default 1,000. */
  maxVersions?: number;
}

export const SCHEMA_REGISTRY_DEFAULTS = { topic: '$schemas', compatibility: 'BACKWARD' as Compatibility, maxSchemaBytes: 262_144, maxSubjects: 10_000, maxVersions: 1_000 };

/** One change, as stored in the topic. */
type Change =
  | { kind: 'schema'; subject: string; version: number; id: number; schemaType: SchemaType; schema: string }
  | { kind: 'config'; subject: string | null; compatibility: Compatibility | null }
  | { kind: 'delete'; subject: string };

interface Entry {
  id: number;
  schemaType: SchemaType;
  schema: string;
  parsed: ParsedSchema;
}

export class SchemaRegistry {
  readonly #o: Required<Omit<SchemaRegistryOptions, 'engine'>>;
  readonly #engine: Engine | undefined;
  readonly #byId = new Map<number, Entry>();
  readonly #idByCanonical = new Map<string, number>();
  /** subject -> versions (index + 1 = version; undefined for none deleted here: deleting a subject drops all). */
  readonly #subjects = new Map<string, number[]>();
  readonly #config = new Map<string, Compatibility>();
  #global: Compatibility;
  #nextId = 1;
  /** Registrations are serialized: the compatibility check and the append must see the same latest version. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(options: SchemaRegistryOptions) {
    this.#o = withDefaults(SCHEMA_REGISTRY_DEFAULTS, { ...options, engine: undefined }) as Required<Omit<SchemaRegistryOptions, 'engine'>>;
    checkOneOf('compatibility', this.#o.compatibility, COMPATIBILITY_LEVELS);
    checkInt('maxSchemaBytes', this.#o.maxSchemaBytes, 2, 64 * 1024 * 1024);
    checkInt('maxSubjects', this.#o.maxSubjects, 1, 10_000_000);
    checkInt('maxVersions', this.#o.maxVersions, 1, 1_000_000);
    this.#engine = options.engine;
    this.#global = this.#o.compatibility;
  }

  /** Opens the registry; with an engine, replays its topic first. */
  static async open(options: SchemaRegistryOptions = {}): Promise<SchemaRegistry> {
    const r = new SchemaRegistry(options);
    if (r.#engine) {
      await r.#engine.ensureTopic(r.#o.topic, { partitions: 1 });
      for (let offset = 0; ; ) {
        const batch = await r.#engine.read(r.#o.topic, 0, offset, 1000);
        if (batch.length === 0) break;
        for (const rec of batch) r.#apply(JSON.parse(rec.payload.toString('utf8')) as Change);
        offset = batch[batch.length - 1]!.offset + 1;
      }
    }
    return r;
  }

  #apply(c: Change): void {
    if (c.kind === 'schema') {
      if (!this.#byId.has(c.id)) {
        const parsed = parseSchema(c.schema, c.schemaType);
        this.#byId.set(c.id, { id: c.id, schemaType: c.schemaType, schema: c.schema, parsed });
        this.#idByCanonical.set(`${c.schemaType}:${parsed.canonical}`, c.id);
      }
      this.#nextId = Math.max(this.#nextId, c.id + 1);
      const versions = this.#subjects.get(c.subject) ?? [];
      versions[c.version - 1] = c.id;
      this.#subjects.set(c.subject, versions);
    } else if (c.kind === 'config') {
      if (c.subject === null) this.#global = c.compatibility ?? SCHEMA_REGISTRY_DEFAULTS.compatibility;
      else if (c.compatibility === null) this.#config.delete(c.subject);
      else this.#config.set(c.subject, c.compatibility);
    } else {
      this.#subjects.delete(c.subject);
    }
  }

  async #commit(c: Change): Promise<void> {
    if (this.#engine) await this.#engine.append({ topic: this.#o.topic, payload: Buffer.from(JSON.stringify(c)), acks: 'all' });
    this.#apply(c);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #parse(schema: string, schemaType: string): ParsedSchema {
    if (!SCHEMA_TYPES.includes(schemaType as SchemaType)) throw invalid(42201, `schemaType must be one of ${SCHEMA_TYPES.join(', ')}, got ${JSON.stringify(String(schemaType).slice(0, 40))}`);
    if (typeof schema !== 'string' || schema.length === 0) throw invalid(42201, 'the schema is missing (a string in "schema")');
    if (Buffer.byteLength(schema) > this.#o.maxSchemaBytes) throw invalid(42201, `the schema is over maxSchemaBytes=${this.#o.maxSchemaBytes}`);
    try {
      return parseSchema(schema, schemaType as SchemaType);
    } catch (err) {
      if (err instanceof InvalidSchema) throw invalid(42201, err.message);
      throw err;
    }
  }

  #versions(subject: string): number[] {
    const v = this.#subjects.get(subject);
    if (!v || v.length === 0) throw notFound(40401, `subject ${JSON.stringify(subject)} not found`);
    return v;
  }

  #version(subject: string, version: number | 'latest'): { version: number; entry: Entry } {
    const versions = this.#versions(subject);
    const n = version === 'latest' ? versions.length : version;
    if (!Number.isInteger(n) || n < 1) throw invalid(42202, `version must be a positive integer or "latest", got ${JSON.stringify(version)}`);
    const id = versions[n - 1];
    if (id === undefined) throw notFound(40402, `version ${n} of subject ${JSON.stringify(subject)} not found`);
    return { version: n, entry: this.#byId.get(id)! };
  }

  compatibility(subject?: string): Compatibility {
    return (subject === undefined ? undefined : this.#config.get(subject)) ?? this.#global;
  }

  /** The subject's own level (undefined: it follows the global one). */
  subjectCompatibility(subject: string): Compatibility | undefined {
    return this.#config.get(subject);
  }

  async setCompatibility(subject: string | undefined, level: string): Promise<Compatibility> {
    if (!COMPATIBILITY_LEVELS.includes(level as Compatibility)) throw invalid(42203, `compatibility must be one of ${COMPATIBILITY_LEVELS.join(', ')}, got ${JSON.stringify(String(level).slice(0, 40))}`);
    await this.#serial(() => this.#commit({ kind: 'config', subject: subject ?? null, compatibility: level as Compatibility }));
    return level as Compatibility;
  }

  subjects(): string[] {
    return [...this.#subjects.keys()].sort();
  }

  versions(subject: string): number[] {
    return this.#versions(subject).map((_, i) => i + 1);
  }

  get(subject: string, version: number | 'latest'): RegisteredSchema {
    const { version: n, entry } = this.#version(subject, version);
    return { subject, version: n, id: entry.id, schemaType: entry.schemaType, schema: entry.schema };
  }

  byId(id: number): { schema: string; schemaType: SchemaType; parsed: ParsedSchema } {
    const e = this.#byId.get(id);
    if (!e) throw notFound(40403, `schema id ${id} not found`);
    return { schema: e.schema, schemaType: e.schemaType, parsed: e.parsed };
  }

  /** The subject's version holding this schema, if registered there. */
  lookup(subject: string, schema: string, schemaType: string = 'AVRO'): RegisteredSchema {
    const parsed = this.#parse(schema, schemaType);
    const versions = this.#versions(subject);
    const id = this.#idByCanonical.get(`${parsed.type}:${parsed.canonical}`);
    const i = id === undefined ? -1 : versions.indexOf(id);
    if (i < 0) throw notFound(40403, `the schema is not registered under ${JSON.stringify(subject)}`);
    return this.get(subject, i + 1);
  }

  /**
   * Why `schema` breaks the subject's level against `version` (or, for _TRANSITIVE levels and version 'latest', every
   * version); empty: compatible. BACKWARD: the new schema reads data written with the old; FORWARD: the old reads the
   * new's; FULL: both.
   */
  check(subject: string, schema: string, schemaType: string = 'AVRO', version: number | 'latest' = 'latest'): string[] {
    const parsed = this.#parse(schema, schemaType);
    this.#versions(subject); // 40401 for a subject that does not exist, as Confluent answers
    return this.#issues(subject, parsed, version);
  }

  #issues(subject: string, parsed: ParsedSchema, version: number | 'latest'): string[] {
    const level = this.compatibility(subject);
    if (level === 'NONE') return [];
    const versions = this.#versions(subject);
    const against = level.endsWith('_TRANSITIVE') && version === 'latest' ? versions.map((_, i) => i + 1) : [this.#version(subject, version).version];
    const issues: string[] = [];
    for (const v of against) {
      const old = this.#byId.get(versions[v - 1]!)!.parsed;
      if (level.startsWith('BACKWARD') || level.startsWith('FULL')) for (const i of parsed.readerIssues(old)) issues.push(`version ${v}, new reads old: ${i}`);
      if (level.startsWith('FORWARD') || level.startsWith('FULL')) for (const i of old.readerIssues(parsed)) issues.push(`version ${v}, old reads new: ${i}`);
    }
    return issues;
  }

  /** Registers (or finds) the schema under the subject; 409 when it breaks the subject's compatibility level. */
  register(subject: string, schema: string, schemaType: string = 'AVRO'): Promise<RegisteredSchema & { existed: boolean }> {
    if (typeof subject !== 'string' || subject.length === 0 || subject.length > 255) return Promise.reject(invalid(42201, 'a subject is 1 to 255 characters'));
    const parsed = this.#parse(schema, schemaType);
    return this.#serial(async () => {
      const versions = this.#subjects.get(subject) ?? [];
      const known = this.#idByCanonical.get(`${parsed.type}:${parsed.canonical}`);
      const at = known === undefined ? -1 : versions.indexOf(known);
      if (at >= 0) return { ...this.get(subject, at + 1), existed: true };
      if (versions.length === 0 && !this.#subjects.has(subject) && this.#subjects.size >= this.#o.maxSubjects) {
        throw invalid(42201, `maxSubjects=${this.#o.maxSubjects} subjects exist`);
      }
      if (versions.length >= this.#o.maxVersions) throw invalid(42201, `maxVersions=${this.#o.maxVersions} versions of ${JSON.stringify(subject)} exist`);
      if (versions.length > 0) {
        const issues = this.#issues(subject, parsed, 'latest');
        if (issues.length) {
          throw new SchemaRegistryError(ErrorCodes.SCHEMA_INCOMPATIBLE, 409, 409,
            `Schema being registered is incompatible with an earlier schema for subject ${JSON.stringify(subject)} (${this.compatibility(subject)}): ${issues.join('; ')}`);
        }
      }
      const id = known ?? this.#nextId;
      const version = versions.length + 1;
      await this.#commit({ kind: 'schema', subject, version, id, schemaType: parsed.type, schema });
      return { ...this.get(subject, version), existed: false };
    });
  }

  /** Deletes a subject (every version); returns the versions it had. */
  async deleteSubject(subject: string): Promise<number[]> {
    const versions = this.versions(subject);
    await this.#serial(() => this.#commit({ kind: 'delete', subject }));
    return versions;
  }
}
