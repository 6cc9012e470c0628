// Who may publish: the publish endpoints move messages into the broker with
// the sidecar's own credentials, so they are open to the pod's own containers
// (loopback peers) and, with TURNOUT_PUBLISH_TOKEN, to peers that present it.
// TURNOUT_PUBLISH_QUEUES narrows which queues POST /v1/publish/{queue} reaches.

import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/**
 * True for 127.0.0.0/8 and ::1, in any spelling a socket may report:
 * a dual-stack listener sees IPv4 peers as IPv4-mapped IPv6
 * (::ffff:127.0.0.1, which BlockList matches against the IPv4 subnet).
 * Anything unparsable (a destroyed socket reports undefined) is not loopback.
 */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const bare = address.replace(/%.*$/, ''); // an IPv6 zone id (fe80::1%eth0) names an interface, not an address
  if (isIPv4(bare)) return LOOPBACK.check(bare, 'ipv4');
  if (isIPv6(bare)) return LOOPBACK.check(bare, 'ipv6');
  return false;
}

/**
 * Whether an Authorization header carries `Bearer <token>`. Both sides are
 * hashed first so that the comparison takes the same time whatever was sent:
 * timingSafeEqual needs equal lengths, and comparing lengths first would tell
 * a prober the token's length.
 */
export function bearerMatches(authorization: string | undefined, token: string): boolean {
  const given = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1];
  if (given === undefined) return false;
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(token));
}

/** A matcher for queue names: `*` is any run of characters, `?` one character, the rest literal. */
export function globMatcher(patterns: readonly string[]): (name: string) => boolean {
  const alternatives = patterns.map((p) =>
    [...p].map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join(''),
  );
  // 's' so that `*` also spans a newline: a name may be anything the broker allows.
  const re = new RegExp(`^(?:${alternatives.join('|')})$`, 'su');
  return (name) => re.test(name);
}

export interface PublishAccessOptions {
  /** TURNOUT_PUBLISH_TOKEN; undefined = loopback peers only. */
  token: string | undefined;
  /** TURNOUT_PUBLISH_QUEUES patterns. */
  queues: readonly string[];
}

export class PublishAccess {
  private readonly token: string | undefined;
  private readonly patterns: readonly string[];
  private readonly queueAllowed: (name: string) => boolean;

  constructor(options: PublishAccessOptions) {
    this.token = options.token;
    this.patterns = options.queues;
    this.queueAllowed = globMatcher(options.queues);
  }

  /**
   * Why this request may not publish (the text of its 403), or undefined
   * when it may. `queue` is the path's queue for /v1/publish/{queue},
   * undefined for /v1/publish (which goes to the configured targets only).
   */
  refusal(peer: string | undefined, authorization: string | undefined, queue: string | undefined): string | undefined {
    if (!isLoopback(peer)) {
      if (this.token === undefined) {
        return 'publishing is open to loopback peers only (the pod\'s own containers); to publish from elsewhere, set TURNOUT_PUBLISH_TOKEN and send Authorization: Bearer <token>';
      }
      if (!bearerMatches(authorization, this.token)) {
        return 'a peer that is not on a loopback address must send Authorization: Bearer <TURNOUT_PUBLISH_TOKEN> to publish (missing or wrong)';
      }
    }
    if (queue !== undefined && !this.queueAllowed(queue)) {
      return `queue ${JSON.stringify(queue)} is not one TURNOUT_PUBLISH_QUEUES lets POST /v1/publish/{queue} reach (${this.patterns.join(',')})`;
    }
    return undefined;
  }
}
