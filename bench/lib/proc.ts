// Figures of another process, read from Linux /proc: the benchmarks measure
// the turnout process (or a baseline's) from the benchmark's own process.

import { readdirSync, readFileSync } from 'node:fs';

/** Peak resident set (VmHWM, the kernel's high-water mark: no spike is missed between samples) of a live process, MiB; NaN once it has gone. */
export function peakRssMiB(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (user + system) a live process has used so far, ms; NaN once it has gone. */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    // Fields after the command name (which may hold spaces, hence the last ') '): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // USER_HZ is 100 on Linux
  } catch {
    return Number.NaN;
  }
}

/** The live direct children of a process (turnout's translation workers are forked children). */
export function childPids(pid: number | undefined): number[] {
  if (pid === undefined) return [];
  try {
    const out: number[] = [];
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      if (text !== '') out.push(...text.split(/\s+/).map(Number));
    }
    return out;
  } catch {
    return [];
  }
}

/**
 * CPU ms of a process and its live children together: what the sidecar
 * costs, translation workers included. A child that exited in between is
 * missing from the later reading, so take both readings while they run.
 */
export function treeCpuMs(pid: number | undefined): number {
  return cpuMs(pid) + childPids(pid).reduce((sum, c) => sum + (cpuMs(c) || 0), 0);
}

/** Peak RSS of the children alone (sum of their VmHWM: an upper bound of what they held at once), MiB. */
export function childrenPeakRssMiB(pid: number | undefined): number {
  return childPids(pid).reduce((sum, c) => sum + (peakRssMiB(c) || 0), 0);
}
