/**
 * First look at every packet a client sends, before moleculer-io or the
 * validator see it. Anything that is not a well-formed `call` is answered with
 * VALIDATION_ERROR (when the client gave an ack) and dropped, so no packet
 * shape can crash, stall or leak memory further in.
 */
import type { WireError } from "../contract";
import { invalid, toWireError } from "./errors";

const MAX_DEPTH = 16;
const MAX_NODES = 20_000;
/** Keys that, as data, break code that expects plain JSON (string conversion, prototypes). */
const RESERVED_KEYS = new Set(["__proto__", "constructor", "prototype", "toString", "valueOf", "toJSON"]);

type Packet = unknown[];
type Next = (err?: Error) => void;

/** Why a call's arguments are unacceptable, or null when they are fine. */
export function callProblem(args: unknown[]): string | null {
	const [action, params] = args;
	if (typeof action !== "string") return "The action name must be a string";
	if (args.length > 2) return "A call takes an action name, params and an acknowledgement callback";
	if (params === undefined || params === null) return null;
	if (typeof params !== "object" || Array.isArray(params)) return "params must be an object";
	return shapeProblem(params);
}

/** Walks the params once: depth, size, reserved keys, and strings that are not well-formed UTF-16. */
function shapeProblem(root: unknown): string | null {
	let nodes = 0;
	const stack: { value: unknown; depth: number }[] = [{ value: root, depth: 0 }];
	while (stack.length > 0) {
		const { value, depth } = stack.pop()!;
		if (++nodes > MAX_NODES) return "params are too large";
		if (typeof value === "string") {
			if (!value.isWellFormed()) return "Text must be well-formed Unicode (no lone surrogates)";
			continue;
		}
		if (typeof value !== "object" || value === null) continue;
		if (depth >= MAX_DEPTH) return "params are nested too deeply";
		if (!Array.isArray(value) && !isPlainObject(value)) return "params must be plain JSON";
		for (const [key, child] of Object.entries(value)) {
			if (RESERVED_KEYS.has(key)) return `"${key}" is not an accepted key`;
			stack.push({ value: child, depth: depth + 1 });
		}
	}
	return null;
}

function isPlainObject(value: object): boolean {
	const proto = Object.getPrototypeOf(value);
	return proto === Object.prototype || proto === null;
}

/** Socket.IO packet middleware: only well-formed calls pass; everything else is answered or dropped. */
export function guardPackets(packet: Packet, next: Next): void {
	const [event, ...rest] = packet;
	const ack = typeof rest[rest.length - 1] === "function" ? (rest.pop() as (err: WireError) => void) : undefined;
	if (event !== "call") return; // clients have nothing else to send: drop silently
	const problem = callProblem(rest);
	if (problem) {
		ack?.(toWireError(invalid(problem)));
		return;
	}
	next();
}
