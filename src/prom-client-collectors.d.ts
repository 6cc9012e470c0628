// prom-client's default collectors, one module each (src/process-metrics.ts
// registers them itself): prom-client publishes no types for them. Each
// takes the registry and collectDefaultMetrics's config.
declare module 'prom-client/lib/metrics/*.js' {
  import type { Registry } from 'prom-client';
  const collect: (registry: Registry, config: { eventLoopMonitoringPrecision?: number }) => void;
  export default collect;
}
