// Weighted, sticky blue/green routing. A route key hashes to a bucket in
// [0, 10000); buckets below weight × 100 go green. The bucket of a key never
// changes, so raising the weight only moves keys from blue to green.

import { hash } from 'node:crypto';
import type { Message } from '../adapters/broker.ts';
import { routeKeyOf, type RouteKey } from '../lib/route-key.ts';
import { expandTarget } from '../lib/targets.ts';
import { isPercent, parsePercent, PERCENT_ALLOWED } from '../config/percent.ts';

export type Color = 'blue' | 'green';

export const BUCKETS = 10_000;

export function bucketOf(routeKey: string): number {
  // md5 is used for spread, not security: it is uniform and fast in node:crypto.
  const digest = hash('md5', routeKey, 'buffer');
  return digest.readUInt32BE(0) % BUCKETS;
}

export function colorOf(bucket: number, weight: number): Color {
  return bucket < weight * 100 ? 'green' : 'blue';
}

export interface RouteTargets {
  blue?: string | undefined;
  green?: string | undefined;
}

export type WeightOrigin = 'env' | 'file' | 'admin';

export interface RouteDecision {
  color: Color;
  target: string;
}

/** Holds the live weight and picks targets. */
export class Router {
  private current: number;
  private origin: WeightOrigin;
  readonly targets: RouteTargets;
  readonly routeKey: RouteKey;
  private readonly onChange: (weight: number, origin: WeightOrigin) => void;
  private readonly onRouted: (color: Color) => void;
  readonly counts: Record<Color, number> = { blue: 0, green: 0 };

  constructor(options: {
    targets: RouteTargets;
    routeKey: RouteKey;
    weight: number;
    /** Where the start weight came from (TURNOUT_GREEN_WEIGHT or TURNOUT_WEIGHT_FILE). */
    origin?: WeightOrigin;
    onChange?: (weight: number, origin: WeightOrigin) => void;
    onRouted?: (color: Color) => void;
  }) {
    this.targets = options.targets;
    this.routeKey = options.routeKey;
    this.current = options.weight;
    this.origin = options.origin ?? 'env';
    this.onChange = options.onChange ?? (() => {});
    this.onRouted = options.onRouted ?? (() => {});
  }

  /** Counts a message the broker confirmed on `color`'s target. */
  routed(color: Color): void {
    this.counts[color]++;
    this.onRouted(color);
  }

  get weight(): number {
    return this.current;
  }

  get weightOrigin(): WeightOrigin {
    return this.origin;
  }

  /** True when at least one target is configured. */
  get enabled(): boolean {
    return this.targets.blue !== undefined || this.targets.green !== undefined;
  }

  setWeight(weight: number, origin: WeightOrigin): void {
    if (!isPercent(weight)) throw new RangeError(`green weight must be ${PERCENT_ALLOWED}, got ${weight}`);
    const changed = weight !== this.current;
    this.current = weight;
    this.origin = origin;
    if (changed) this.onChange(weight, origin);
  }

  /**
   * Picks the color and target. With one target configured, everything goes
   * there. `source` expands {source} in the templates; without it, a
   * templated target cannot be resolved (returns undefined).
   */
  route(message: Message, source: string | undefined): RouteDecision | undefined {
    const { blue, green } = this.targets;
    let color: Color;
    let template: string;
    if (blue !== undefined && green !== undefined) {
      color = colorOf(bucketOf(routeKeyOf(message, this.routeKey)), this.current);
      template = color === 'green' ? green : blue;
    } else if (green !== undefined) {
      color = 'green';
      template = green;
    } else if (blue !== undefined) {
      color = 'blue';
      template = blue;
    } else {
      return undefined;
    }
    if (template.includes('{source}')) {
      if (source === undefined) return undefined;
      return { color, target: expandTarget(template, source) };
    }
    return { color, target: template };
  }
}

/** Parses a weight file's content: one number 0–100 (whitespace and a trailing % allowed). */
export function parseWeight(text: string): number {
  const weight = parsePercent(text.trim().replace(/%$/, ''));
  if (weight === undefined) throw new Error(`weight must be ${PERCENT_ALLOWED}, got ${JSON.stringify(text.trim().slice(0, 40))}`);
  return weight;
}
