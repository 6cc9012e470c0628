// The benchmark message: a fixed ~1 KiB v1 JSON document (generated from a
// fixed seed, so every run and every broker benchmark sends the same bytes)
// and the reference's (docs/reference.md) email → contact.email translation step.

export const VERSION_HEADER = 'x-schema-version';

/** The example step of docs/reference.md, verbatim. */
export const STEP_1_TO_2 = '$merge([$sift($, function($v,$k){$k != "email"}), {"contact": {"email": email}}])';
export const STEP_2_TO_1 = '$merge([$sift($, function($v,$k){$k != "contact"}), {"email": contact.email}])';

/** A translators file with both steps (YAML; JSON-quoted values are valid YAML). */
export const TRANSLATORS_YAML = `"1->2": ${JSON.stringify(STEP_1_TO_2)}\n"2->1": ${JSON.stringify(STEP_2_TO_1)}\n`;

/** mulberry32: a tiny deterministic PRNG. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SIZE = 1024;

/**
 * Two more steps after 1->2, for a translation chain of three (1->2->3->4):
 * the same kind of field move as the reference's step.
 */
export const STEP_2_TO_3 = '$merge([$sift($, function($v,$k){$k != "name"}), {"customer": {"name": name}}])';
export const STEP_3_TO_4 = '$merge([$sift($, function($v,$k){$k != "tags"}), {"labels": tags}])';
export const CHAIN_3_YAML = `"1->2": ${JSON.stringify(STEP_1_TO_2)}\n"2->3": ${JSON.stringify(STEP_2_TO_3)}\n"3->4": ${JSON.stringify(STEP_3_TO_4)}\n`;

/**
 * A v1 order event of exactly `size` bytes of JSON (1 KiB by default). A
 * larger one has more line items, not just a longer note, so parsing and
 * translating it costs what a real document of that size would.
 */
export function benchDocument(seed = 20240601, size = SIZE): Record<string, unknown> {
  const rnd = prng(seed);
  const word = (n: number): string => Array.from({ length: n }, () => String.fromCharCode(97 + Math.floor(rnd() * 26))).join('');
  const doc: Record<string, unknown> = {
    orderId: `ord-${Math.floor(rnd() * 1e9)}`,
    customerId: `cus-${Math.floor(rnd() * 1e6)}`,
    name: `${word(6)} ${word(8)}`,
    email: `${word(7)}@${word(6)}.example`,
    createdAt: new Date(Date.UTC(2024, 5, 1, 12, 0, Math.floor(rnd() * 60))).toISOString(),
    currency: 'EUR',
    items: Array.from({ length: 5 }, (_, i) => ({
      sku: `SKU-${word(3).toUpperCase()}-${1000 + i}`,
      title: `${word(5)} ${word(7)}`,
      qty: 1 + Math.floor(rnd() * 4),
      price: Math.round(rnd() * 10000) / 100,
    })),
    shipping: { street: `${word(9)} ${Math.floor(rnd() * 200)}`, city: word(8), zip: String(10000 + Math.floor(rnd() * 89999)), country: 'DE' },
    tags: [word(4), word(5), word(6)],
    note: '',
  };
  // Drawn after every other field, so the 1 KiB document stays the same bytes.
  const items = doc.items as Record<string, unknown>[];
  let length = Buffer.byteLength(JSON.stringify(doc));
  for (let i = items.length; size > SIZE; i++) {
    const item = { sku: `SKU-${word(3).toUpperCase()}-${1000 + i}`, title: `${word(5)} ${word(7)}`, qty: 1 + Math.floor(rnd() * 4), price: Math.round(rnd() * 10000) / 100 };
    const more = Buffer.byteLength(JSON.stringify(item)) + 1;
    if (length + more > size - 64) break;
    items.push(item);
    length += more;
  }
  // Pad to exactly `size` bytes of JSON.
  const missing = size - length;
  if (missing < 0) throw new Error(`bench document is ${size - missing} bytes, more than ${size}`);
  doc.note = word(missing);
  return doc;
}

/** The document as the bytes a producer sends. */
export function benchPayload(seed?: number, size?: number): Buffer {
  return Buffer.from(JSON.stringify(benchDocument(seed, size)));
}
