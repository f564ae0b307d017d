/**
 * The simulated population: N users, each with one socket, paired into M
 * buyer/seller conversations. A lane is one (sender, conversation) pair; both
 * members of every conversation send, so there are 2M lanes.
 */
import { io, type Socket } from "socket.io-client";
import type { ActionName, ParamsOf, ResultOf, WireError } from "../../contract";
import type { LoadJob } from "../job";

export interface Lane {
	socket: Socket;
	conversationId: string;
}

export interface Fleet {
	sockets: Socket[];
	lanes: Lane[];
	close(): void;
}

const SETUP_CALL_TIMEOUT_MS = 15_000;

export async function buildFleet(job: LoadJob): Promise<Fleet> {
	if (job.users < 2) throw new Error("--users must be at least 2");
	if (job.conversations < 1) throw new Error("--conversations must be at least 1");
	const userIds = Array.from({ length: job.users }, (_, i) => `bench-u${i}`);
	const tokens = await mapLimit(userIds, 16, (userId) => devToken(job.url, userId));
	const sockets: Socket[] = [];
	const fleet: Fleet = { sockets, lanes: [], close: () => sockets.forEach((s) => s.disconnect()) };
	try {
		const connected = await mapLimit(userIds, 32, (userId, i) =>
			// Buyer 2j and seller 2j+1 land on different gateways of a cluster: every message crosses nodes.
			connect(job.urls[i % job.urls.length]!, tokens[i]!, `bench-d${i}`, sourceAddress(i, job.sourceAddresses)),
		);
		sockets.push(...connected);
		const pairs = Array.from({ length: job.conversations }, (_, j) => ({
			j,
			buyer: (2 * j) % job.users,
			seller: (2 * j + 1) % job.users,
		}));
		const opened = await mapLimit(pairs, 16, ({ j, buyer, seller }) =>
			call(sockets[buyer]!, "conversations.open", { listingId: `bench-l${j}`, sellerId: userIds[seller]!, listingTitle: `Bench listing ${j}` }),
		);
		pairs.forEach(({ buyer, seller }, j) => {
			const conversationId = opened[j]!.id;
			fleet.lanes.push({ socket: sockets[buyer]!, conversationId }, { socket: sockets[seller]!, conversationId });
		});
		return fleet;
	} catch (err) {
		fleet.close();
		throw err;
	}
}

/** 127.0.0.1, .2, ...: each source address has its own ~28k ephemeral ports, which matters for many sockets. */
function sourceAddress(i: number, count: number): string | undefined {
	return count > 1 ? `127.0.0.${1 + (i % count)}` : undefined;
}

async function devToken(url: string, userId: string): Promise<string> {
	const res = await fetch(`${url}/api/dev/token`, {
		method: "POST",
		headers: { "content-type": "application/json" },
		body: JSON.stringify({ userId, name: userId, role: "user" }),
	});
	if (!res.ok) throw new Error(`dev token for ${userId}: HTTP ${res.status} ${await res.text()}`);
	return ((await res.json()) as { token: string }).token;
}

function connect(url: string, token: string, deviceId: string, localAddress: string | undefined): Promise<Socket> {
	// reconnection off: a dropped socket is a finding to report, not something to paper over.
	const socket = io(url, {
		auth: { token, deviceId },
		transports: ["websocket"],
		reconnection: false,
		forceNew: true,
		timeout: SETUP_CALL_TIMEOUT_MS,
		...(localAddress ? { localAddress } : {}),
	});
	return new Promise((resolve, reject) => {
		socket.once("connect", () => resolve(socket));
		socket.once("connect_error", (err) => {
			socket.disconnect();
			reject(new Error(`connect ${deviceId}: ${err.message}`));
		});
	});
}

export function call<A extends ActionName>(socket: Socket, action: A, params: ParamsOf<A>): Promise<ResultOf<A>> {
	return new Promise((resolve, reject) => {
		socket.timeout(SETUP_CALL_TIMEOUT_MS).emit("call", action, params, (timeout: Error | null, err: WireError | null, res: ResultOf<A>) => {
			if (timeout) reject(new Error(`${action}: no answer within ${SETUP_CALL_TIMEOUT_MS} ms`));
			else if (err) reject(new Error(`${action}: ${err.type} ${err.message}`));
			else resolve(res);
		});
	});
}

/** Like Promise.all over `items`, with at most `limit` running at once (the server's accept queue is finite). */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
	const results = new Array<R>(items.length);
	let next = 0;
	const worker = async () => {
		while (next < items.length) {
			const i = next++;
			results[i] = await fn(items[i]!, i);
		}
	};
	await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
	return results;
}
