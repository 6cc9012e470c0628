// The one reading of a percentage, used for the green weight wherever it
// enters: TURNOUT_GREEN_WEIGHT, the weight file, the admin API and the
// router itself. A number from 0 to 100, decimals allowed, written as plain
// digits (no sign, exponent, hex or leading dot).

/** What a percentage may be, for error messages. */
export const PERCENT_ALLOWED = 'a number from 0 to 100';

/** True for a number from 0 to 100 (NaN and the infinities are not). */
export function isPercent(n: number): boolean {
  return n >= 0 && n <= 100;
}

/** `digits[.digits]` from 0 to 100, white space around allowed; undefined for anything else. */
export function parsePercent(text: string): number | undefined {
  const v = text.trim();
  if (!/^\d+(\.\d+)?$/.test(v)) return undefined;
  const n = Number(v);
  return isPercent(n) ? n : undefined;
}
