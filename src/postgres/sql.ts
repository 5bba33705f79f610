/**
 * Quoting for SQL that pg-dr writes itself. Every name and value that reaches SQL text —
 * a table name from the catalog, a role or setting from a backup's globals — goes through
 * one of these; none depends on the server's `standard_conforming_strings`.
 */

/** An identifier: always double-quoted, inner quotes doubled. */
export function quoteIdent(name: string): string {
  if (name.includes('\0')) throw new Error('An SQL identifier cannot hold a NUL character.');
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A string literal in the escape-string form (`E'…'`), whose meaning does not depend on
 * `standard_conforming_strings`: backslashes and quotes are both escaped.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new Error('An SQL literal cannot hold a NUL character.');
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** A dotted setting name (`work_mem`, `app.tenant`), each part quoted. */
export function quoteSettingName(name: string): string {
  return name.split('.').map(quoteIdent).join('.');
}
