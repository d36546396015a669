import type { CommandHandler } from './base.ts';
import { SELECTED } from './base.ts';
import { capability, id, logout, namespace, noop } from './simple.ts';
import { starttls } from './starttls.ts';
import { login } from './login.ts';
import { authenticate } from './authenticate.ts';
import { list, lsub } from './list.ts';
import { status } from './status.ts';
import { examine, select } from './select.ts';
import { create } from './create.ts';
import { deleteCmd } from './delete.ts';
import { rename } from './rename.ts';
import { subscribe, unsubscribe } from './subscribe.ts';
import { append } from './append.ts';
import { fetch } from './fetch.ts';
import { store } from './store.ts';
import { copy, move } from './copy.ts';
import { search } from './search.ts';
import { uid } from './uid.ts';
import { expunge } from './expunge.ts';
import { close, unselect } from './close.ts';
import { idle } from './idle.ts';

/** The command table: one file per command (or per pair of twins such as SELECT / EXAMINE). */
export const COMMANDS: Record<string, CommandHandler> = {
  CAPABILITY: capability,
  NOOP: noop,
  CHECK: { states: SELECTED, run: noop.run },
  LOGOUT: logout,
  ID: id,
  NAMESPACE: namespace,
  STARTTLS: starttls,
  LOGIN: login,
  AUTHENTICATE: authenticate,
  LIST: list,
  LSUB: lsub,
  STATUS: status,
  SELECT: select,
  EXAMINE: examine,
  CREATE: create,
  DELETE: deleteCmd,
  RENAME: rename,
  SUBSCRIBE: subscribe,
  UNSUBSCRIBE: unsubscribe,
  APPEND: append,
  FETCH: fetch,
  STORE: store,
  COPY: copy,
  MOVE: move,
  SEARCH: search,
  UID: uid,
  EXPUNGE: expunge,
  CLOSE: close,
  UNSELECT: unselect,
  IDLE: idle,
};

export * from './base.ts';
