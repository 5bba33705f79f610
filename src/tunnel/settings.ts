/** SSH tunnel to a bastion, when the database is private. */
export interface SshSettings {
  /** The bastion's host name or address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
  /** The user on the bastion. */
  readonly user: string;
  /** An OpenSSH private key (secret). */
  readonly privateKey: string;
  /** The bastion's known_hosts line(s): its host key is always verified. */
  readonly knownHosts: string;
}
