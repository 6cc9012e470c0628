// The value blue/green routing sticks to (TURNOUT_ROUTE_KEY), also the SQS
// FIFO MessageGroupId: the message key, a header or a JSON field.

import { headerValue } from './headers.ts';

/** TURNOUT_ROUTE_KEY, parsed (config/schema.ts). */
export type RouteKey = { kind: 'key' } | { kind: 'header'; name: string } | { kind: 'json'; path: string[] };

/** What routeKeyOf reads of a message (adapters/broker.ts Message has it). */
export interface Keyed {
  id: string;
  key?: string;
  headers: Record<string, string>;
  payload: Buffer;
}

/** The value routing sticks to. Falls back to the message id when the key/header/field is missing. */
export function routeKeyOf(message: Keyed, spec: RouteKey): string {
  switch (spec.kind) {
    case 'key':
      return message.key !== undefined && message.key !== '' ? message.key : message.id;
    case 'header': {
      const v = headerValue(message.headers, spec.name);
      return v !== undefined && v !== '' ? v : message.id;
    }
    case 'json': {
      let value: unknown;
      try {
        value = JSON.parse(message.payload.toString('utf8'));
      } catch {
        return message.id;
      }
      for (const part of spec.path) {
        if (value === null || typeof value !== 'object') return message.id;
        value = (value as Record<string, unknown>)[part];
      }
      if (value === undefined || value === null) return message.id;
      return typeof value === 'string' ? value : JSON.stringify(value);
    }
  }
}
