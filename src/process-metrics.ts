// prom-client's default process and Node.js metrics, on a given registry,
// with one of them counted here: nodejs_gc_duration_seconds.
//
// Why not collectDefaultMetrics(): prom-client 15's GC observer records only
// the first entry of each batch Node hands a PerformanceObserver
// (`list.getEntries()[0]`), and Node batches every GC since the last turn of
// the event loop. Under load one turn handles many messages and spans several
// scavenges: a 5 ms-per-turn allocation loop had 47 of 181 batches with more
// than one entry, and the histogram counted 181 of 228 GCs. So turnout
// registers prom-client's other collectors itself (the same names, help and
// labels) and observes every GC entry. The list below must follow
// prom-client's own (test/unit/process-metrics.test.ts compares them).

import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';
import { Histogram, type Registry } from 'prom-client';
import eventLoopLag from 'prom-client/lib/metrics/eventLoopLag.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap.js';
import processCpuTotal from 'prom-client/lib/metrics/processCpuTotal.js';
import processHandles from 'prom-client/lib/metrics/processHandles.js';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import processRequests from 'prom-client/lib/metrics/processRequests.js';
import processResources from 'prom-client/lib/metrics/processResources.js';
import processStartTime from 'prom-client/lib/metrics/processStartTime.js';
import version from 'prom-client/lib/metrics/version.js';

/** prom-client's default collectors but its GC one, by the names of its `metricsList`. */
export const PROM_CLIENT_COLLECTORS = {
  processCpuTotal,
  processStartTime,
  osMemoryHeap,
  processOpenFileDescriptors,
  processMaxFileDescriptors,
  eventLoopLag,
  processResources,
  processHandles,
  processRequests,
  heapSizeAndUsed,
  heapSpacesSizeAndUsed,
  version,
};

/** prom-client's name, help and buckets for it, so dashboards built on it keep working. */
export const GC_METRIC = 'nodejs_gc_duration_seconds';
const GC_BUCKETS = [0.001, 0.01, 0.1, 1, 2, 5];

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

export interface ProcessMetrics {
  /** Stops observing GC (the other collectors only run when the registry is read). */
  stop(): void;
}

/** Registers the process and Node.js metrics on `registry`. */
export function collectProcessMetrics(registry: Registry): ProcessMetrics {
  // collectDefaultMetrics's one default; the collectors read nothing else of it.
  const config = { eventLoopMonitoringPrecision: 10 };
  for (const collect of Object.values(PROM_CLIENT_COLLECTORS)) collect(registry, config);

  const gc = new Histogram({
    name: GC_METRIC,
    help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
    labelNames: ['kind'],
    buckets: GC_BUCKETS,
    registers: [registry],
  });
  // A child per kind: no label hashing per GC.
  const byKind = new Map(Object.entries(GC_KINDS).map(([k, name]) => [Number(k), gc.labels({ kind: name })]));
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
      const child = kind === undefined ? undefined : byKind.get(kind);
      if (child !== undefined) child.observe(entry.duration / 1000);
      else gc.observe({ kind: String(kind) }, entry.duration / 1000);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return { stop: () => observer.disconnect() };
}
