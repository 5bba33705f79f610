/**
 * An error the user can act on: its message says what went wrong and what to do, and is
 * reported as it is (no class name in front). Anything else is an unexpected failure.
 */
export class UserError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'UserError';
  }
}

/** A bad input value: names the input, so the user knows what to fix. */
export class InputError extends UserError {
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(message);
    this.name = 'InputError';
  }
}

/** A backup that stored nothing anywhere: the step fails and no manifest exists. */
export class BackupFailed extends UserError {
  constructor(
    message: string,
    readonly id: string | null,
  ) {
    super(message);
    this.name = 'BackupFailed';
  }
}

/** Several bad inputs of one run, reported together: each names its input. */
export class InputErrors extends UserError {
  constructor(readonly errors: readonly InputError[]) {
    super(
      `${errors.length} inputs are invalid:\n${errors.map((e) => `- ${e.message}`).join('\n')}`,
    );
    this.name = 'InputErrors';
  }
}

/** A bad input (one or several): the user's usage, not the run, failed. */
export function isInputError(e: unknown): e is InputError | InputErrors {
  return e instanceof InputError || e instanceof InputErrors;
}
