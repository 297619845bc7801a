// The error of a failed request.
export class StatehubError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly status: number,
    readonly data: any = undefined,
  ) {
    super(message);
    this.name = "StatehubError";
  }
}
