/**
 * Errors clients branch on. Each carries a stable `type` and an HTTP-like `code`
 * (see docs/protocol.md); messages are for humans and may change.
 */
import { Errors } from "moleculer";
import { SOCKET_ACTIONS, type ActionName, type ErrorType, type WireError } from "../contract";

export class ParleyError extends Errors.MoleculerClientError {
	constructor(message: string, code: number, type: ErrorType, data?: unknown) {
		super(message, code, type, data);
	}
}

/**
 * Errors cross the NATS transporter as plain objects and come back as bare `Error`s, so a
 * FORBIDDEN thrown on a core node would reach the gateway as an unknown error (INTERNAL).
 * This puts ParleyError back together from its name, code and type on the receiving node.
 */
export class ParleyErrorRegenerator extends Errors.Regenerator {
	override restoreCustomError(plain: Errors.PlainMoleculerError): Error | undefined {
		if (plain.name !== "ParleyError" || typeof plain.code !== "number" || typeof plain.type !== "string") return undefined;
		return new ParleyError(String(plain.message ?? ""), plain.code, plain.type as ErrorType, plain.data);
	}
}

export const unauthorized = (message = "Authentication required") => new ParleyError(message, 401, "UNAUTHORIZED");
export const forbidden = (message = "Not allowed") => new ParleyError(message, 403, "FORBIDDEN");
export const notFound = (message: string, data?: unknown) => new ParleyError(message, 404, "NOT_FOUND", data);
export const invalid = (message: string, data?: unknown) => new ParleyError(message, 422, "VALIDATION_ERROR", data);
export const conflict = (message: string, data?: unknown) => new ParleyError(message, 409, "CONFLICT", data);
export const tooLarge = (message: string, data?: unknown) => new ParleyError(message, 413, "PAYLOAD_TOO_LARGE", data);
export const unavailable = (message: string) => new ParleyError(message, 503, "UNAVAILABLE");
export const rateLimited = (retryAfterMs: number) =>
	new ParleyError("Too many calls, slow down", 429, "RATE_LIMITED", { retryAfterMs });

const UNAVAILABLE: WireError = Object.freeze({ name: "UnavailableError", message: "Service temporarily unavailable, retry", code: 503, type: "UNAVAILABLE" });

/**
 * What a client may see of any error: client errors keep their code, type,
 * message and data; anything else becomes a bare INTERNAL/UNAVAILABLE error so
 * node ids, stack traces and engine messages never leave the server.
 */
export function toWireError(err: unknown): WireError {
	const e = err as Partial<WireError> & { name?: string; retryable?: boolean };
	const code = typeof e?.code === "number" ? e.code : 500;
	if (code === 404 && e.name === "ServiceNotFoundError") {
		// A contract action is never unknown: no node serves it right now (a cluster node restarting).
		const action = (e.data as { action?: unknown } | undefined)?.action;
		if (SOCKET_ACTIONS.includes(action as ActionName)) return { ...UNAVAILABLE };
		return { name: "NotFoundError", message: "Unknown action", code: 404, type: "NOT_FOUND" };
	}
	if (code === 404 && e.name === "NotFoundError") {
		return { name: "NotFoundError", message: "Not found", code: 404, type: "NOT_FOUND" };
	}
	if (e?.name === "BadRequestError") {
		return { name: "ValidationError", message: "The action name must be a string", code: 422, type: "VALIDATION_ERROR" };
	}
	if (e?.name === "ValidationError" && code === 422) {
		return { name: "ValidationError", message: "Parameters are invalid", code, type: "VALIDATION_ERROR", data: validationDetails(e.data) };
	}
	if (err instanceof ParleyError) {
		const wire: WireError = { name: err.name, message: err.message, code: err.code, type: err.type };
		if (err.data !== undefined) wire.data = err.data;
		return wire;
	}
	// HTTP body parser (moleculer-web) errors.
	if (e?.type === "entity.parse.failed") return { name: "ValidationError", message: "The body is not valid JSON", code: 422, type: "VALIDATION_ERROR" };
	if (e?.type === "encoding.unsupported" || e?.type === "charset.unsupported") {
		return { name: "UnsupportedMediaTypeError", message: "Send the body as uncompressed UTF-8 JSON", code: 415, type: "UNSUPPORTED_MEDIA_TYPE" };
	}
	if (e?.type === "entity.too.large") return { name: "PayloadTooLargeError", message: "The body is too large", code: 413, type: "PAYLOAD_TOO_LARGE" };
	if (e?.retryable || e?.name === "ServiceNotAvailableError" || code === 503 || code === 504) return { ...UNAVAILABLE };
	return { name: "InternalError", message: "Internal error", code: 500, type: "INTERNAL" };
}

/** fastest-validator details without the echoed values (they may be huge). */
function validationDetails(data: unknown): unknown {
	if (!Array.isArray(data)) return undefined;
	// A few are enough to fix a call; thousands would turn a small bad request into a large answer.
	return data.slice(0, 20).map((d: { field?: string; type?: string; message?: string }) => ({ field: d.field, type: d.type, message: d.message }));
}
