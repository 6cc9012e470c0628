// Publishing through turnout (POST /v1/publish[/{queue}]): builds the
// message from the request, stamps TURNOUT_PRODUCE_VERSION, picks the target
// and resolves only after the broker confirmed.

import { randomUUID } from 'node:crypto';
import type { BrokerAdapter, Message, PublishOptions } from '../adapters/broker.ts';
import type { Config } from '../config/schema.ts';
import { fromWire, headerValue, setHeader } from '../lib/headers.ts';
import type { Color, Router } from './router.ts';

export class PublishRefused extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'PublishRefused';
    this.status = status;
  }
}

export interface PublishRequest {
  payload: Buffer;
  /** Request headers, lower-cased; a header sent more than once as the array of its lines (node's headersDistinct). */
  headers: Record<string, string | string[] | undefined>;
  /** Explicit queue (/v1/publish/{queue}); otherwise routed. */
  queue?: string | undefined;
}

export interface PublishResult {
  id: string;
  queue: string;
  color?: Color;
}

/**
 * A header's text: each line decoded on its own (one may be UTF-8 and another
 * Latin-1), then joined as HTTP joins repeated headers.
 */
const text = (v: string | string[]): string => (Array.isArray(v) ? v.map(fromWire).join(', ') : fromWire(v));

export function messageFromRequest(req: PublishRequest, config: Config): Message {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith('x-') || value === undefined) continue;
    if (name === 'x-turnout-key' || name === 'x-turnout-message-id') continue;
    headers[name] = text(value);
  }
  if (config.produceVersion !== undefined && (headerValue(headers, config.versionHeader) ?? '') === '') {
    setHeader(headers, config.versionHeader, String(config.produceVersion));
  }
  const one = (v: string | string[] | undefined): string | undefined => (v === undefined ? undefined : text(v));
  const id = one(req.headers['x-turnout-message-id']);
  const message: Message = { id: id !== undefined && id !== '' ? id : randomUUID(), payload: req.payload, headers };
  const key = one(req.headers['x-turnout-key']);
  if (key !== undefined && key !== '') message.key = key;
  const contentType = one(req.headers['content-type']);
  if (contentType !== undefined && contentType !== '') message.contentType = contentType;
  return message;
}

/**
 * The app that sent the request is there to be told: while the broker blocks
 * publishes (a RabbitMQ alarm) it hears 503 at once, not 504 after the
 * confirm timeout (adapters/broker.ts, PublishOptions).
 */
const FAIL_FAST: PublishOptions = { failFast: true };

export async function publish(
  req: PublishRequest,
  deps: { config: Config; broker: BrokerAdapter; router: Router },
): Promise<PublishResult> {
  const message = messageFromRequest(req, deps.config);
  if (req.queue !== undefined) {
    await deps.broker.publish(req.queue, message, FAIL_FAST);
    return { id: message.id, queue: req.queue };
  }
  if (!deps.router.enabled) {
    throw new PublishRefused(400, 'no target configured: set TURNOUT_BLUE and/or TURNOUT_GREEN, or publish to /v1/publish/{queue}');
  }
  const decision = deps.router.route(message, undefined);
  if (!decision) {
    throw new PublishRefused(400, 'the route target contains {source}, which has no value for a publish; publish to /v1/publish/{queue}');
  }
  await deps.broker.publish(decision.target, message, FAIL_FAST);
  deps.router.routed(decision.color);
  return { id: message.id, queue: decision.target, color: decision.color };
}
