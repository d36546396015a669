/** MQTT reason / return codes the door sends, and the broker's refusals mapped onto them. */
import { ErrorCodes } from '../../../core/errors.ts';

/** MQTT 5 reason codes (spec 2.4). */
export const RC = {
  SUCCESS: 0x00,
  GRANTED_QOS_1: 0x01,
  GRANTED_QOS_2: 0x02,
  NO_MATCHING_SUBSCRIBERS: 0x10,
  NO_SUBSCRIPTION_EXISTED: 0x11,
  UNSPECIFIED: 0x80,
  MALFORMED: 0x81,
  PROTOCOL_ERROR: 0x82,
  IMPLEMENTATION_SPECIFIC: 0x83,
  UNSUPPORTED_PROTOCOL_VERSION: 0x84,
  CLIENT_ID_NOT_VALID: 0x85,
  BAD_USERNAME_OR_PASSWORD: 0x86,
  NOT_AUTHORIZED: 0x87,
  SERVER_UNAVAILABLE: 0x88,
  SERVER_SHUTTING_DOWN: 0x8b,
  KEEP_ALIVE_TIMEOUT: 0x8d,
  SESSION_TAKEN_OVER: 0x8e,
  TOPIC_FILTER_INVALID: 0x8f,
  TOPIC_NAME_INVALID: 0x90,
  PACKET_ID_NOT_FOUND: 0x92,
  RECEIVE_MAXIMUM_EXCEEDED: 0x93,
  TOPIC_ALIAS_INVALID: 0x94,
  PACKET_TOO_LARGE: 0x95,
  MESSAGE_RATE_TOO_HIGH: 0x96,
  QUOTA_EXCEEDED: 0x97,
  PAYLOAD_FORMAT_INVALID: 0x99,
  QOS_NOT_SUPPORTED: 0x9b,
  SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: 0x9e,
} as const;

/** MQTT 3.1.1 CONNACK return codes. */
export const CONNACK_V4 = {
  ACCEPTED: 0,
  UNACCEPTABLE_PROTOCOL_VERSION: 1,
  IDENTIFIER_REJECTED: 2,
  SERVER_UNAVAILABLE: 3,
  BAD_USERNAME_OR_PASSWORD: 4,
  NOT_AUTHORIZED: 5,
} as const;

/** A broker refusal (PubsubError code) -> the MQTT 5 reason code for PUBACK / PUBREC / SUBACK. */
export function reasonForError(code: string | undefined, forSubscribe = false): number {
  switch (code) {
    case ErrorCodes.PUBSUB_ACL:
    case ErrorCodes.PUBSUB_AUTH:
    case ErrorCodes.PUBSUB_SIGNATURE:
      return RC.NOT_AUTHORIZED;
    case ErrorCodes.PUBSUB_LIMIT:
      return RC.QUOTA_EXCEEDED;
    case ErrorCodes.PUBSUB_RATE:
      return RC.MESSAGE_RATE_TOO_HIGH;
    case ErrorCodes.PUBSUB_INVALID:
      return forSubscribe ? RC.TOPIC_FILTER_INVALID : RC.TOPIC_NAME_INVALID;
    default:
      return RC.IMPLEMENTATION_SPECIFIC;
  }
}

/** A broker refusal of CONNECT -> CONNACK code (5) and return code (3.1.1). */
export function connackForError(code: string | undefined): { v5: number; v4: number } {
  switch (code) {
    case ErrorCodes.PUBSUB_AUTH:
      return { v5: RC.BAD_USERNAME_OR_PASSWORD, v4: CONNACK_V4.BAD_USERNAME_OR_PASSWORD };
    case ErrorCodes.PUBSUB_ACL:
      return { v5: RC.NOT_AUTHORIZED, v4: CONNACK_V4.NOT_AUTHORIZED };
    case ErrorCodes.PUBSUB_LIMIT:
    case ErrorCodes.PUBSUB_RATE:
      return { v5: RC.QUOTA_EXCEEDED, v4: CONNACK_V4.SERVER_UNAVAILABLE };
    default:
      return { v5: RC.SERVER_UNAVAILABLE, v4: CONNACK_V4.SERVER_UNAVAILABLE };
  }
}
