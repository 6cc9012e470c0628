// One line saying where figures were measured, for the table's header.

import { cpus, totalmem } from 'node:os';

export function describeMachine(): string {
  const c = cpus();
  const model = (c[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim();
  return `${c.length} cores (${model}), ${Math.round(totalmem() / 2 ** 30)} GiB RAM, ${process.platform}/${process.arch}, Node ${process.versions.node}`;
}
