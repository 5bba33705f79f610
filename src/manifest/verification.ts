import { z } from 'zod';

export const VERIFY_LEVELS = ['checksum', 'decrypt', 'restore'] as const;
export type VerifyLevel = (typeof VERIFY_LEVELS)[number];

/** What one verification of one backup at one destination found. */
export const Verification = z.object({
  format: z.literal('pg-dr-verification/1'),
  backupId: z.string(),
  destination: z.string(),
  level: z.enum(VERIFY_LEVELS),
  ok: z.boolean(),
  startedAt: z.iso.datetime(),
  durationSeconds: z.number().nonnegative(),
  tool: z.object({ name: z.literal('pg-dr'), version: z.string() }),
  runUrl: z.string().nullable(),
  objects: z.array(
    z.object({
      name: z.string(),
      ok: z.boolean(),
      bytes: z.number().int().nonnegative().nullable(),
      sha256: z.string().nullable(),
      /** What differed, when not ok. */
      error: z.string().nullable(),
    }),
  ),
  /** decrypt level and above: the archive's table of contents opened. */
  archive: z
    .object({
      ok: z.boolean(),
      entries: z.number().int().nonnegative(),
      error: z.string().nullable(),
    })
    .nullable(),
  /** restore level: the drill. */
  drill: z
    .object({
      ok: z.boolean(),
      seconds: z.number().nonnegative(),
      tables: z.number().int().nonnegative(),
      mismatches: z.array(
        z.object({
          table: z.string(),
          expected: z.number().int(),
          actual: z.number().int().nullable(),
        }),
      ),
      error: z.string().nullable(),
      /** What the drill's database differs in from the source, if anything. */
      differences: z.array(z.string()).optional(),
      /** A physical backup's drill: what it proved, and what it did not (row counts). */
      proven: z.array(z.string()).optional(),
    })
    .nullable(),
  error: z.string().nullable(),
});
export type Verification = z.infer<typeof Verification>;

export function parseVerification(text: string): Verification {
  return Verification.parse(JSON.parse(text));
}

/** `20261126T030000Z.json`: sorts by time. */
export function verificationKey(prefix: string, backupId: string, at: Date): string {
  const stamp = at
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.(\d{3})Z$/, '$1Z');
  return `${prefix}${backupId}/verifications/${stamp}.json`;
}
