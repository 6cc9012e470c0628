export async function runDemo(_o: { messages: number; rate: number; out: NodeJS.WritableStream }): Promise<number> { return 1; }
