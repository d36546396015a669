/**
 * The schema registry (issue 14): Confluent's REST core over Avro (avsc) and JSON Schema (ajv), kept in a pub/sub
 * topic, and the producer / consumer serdes in Confluent's wire format.
 */
export { COMPATIBILITY_LEVELS, SCHEMA_REGISTRY_DEFAULTS, SchemaRegistry, SchemaRegistryError, type Compatibility, type RegisteredSchema, type SchemaRegistryOptions } from './registry.ts';
export { SCHEMA_TYPES, parseSchema, type ParsedSchema, type SchemaType } from './formats.ts';
export { SCHEMA_REGISTRY_ROUTES, startSchemaRegistry, type RunningSchemaRegistry, type SchemaRegistryServerOptions } from './http.ts';
export { MAGIC_BYTE, SchemaRegistryClient, createDeserializer, createSerializer, frame, schemaIdOf } from './serde.ts';
export { schemaValidator } from './validator.ts';
