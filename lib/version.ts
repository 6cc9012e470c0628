/** Parses a schema version: a positive integer, optionally written with a leading v ("2", "v2", "V2"). */
export function parseVersion(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const m = /^\s*[vV]?(\d{1,9})\s*$/.exec(raw);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n >= 1 ? n : undefined;
}
