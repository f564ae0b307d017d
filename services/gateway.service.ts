/**
 * gateway: the one port clients see. Socket.IO (moleculer-io) for the client
 * contract, HTTP (moleculer-web) for health, info and dev tokens. It also hosts
 * the session actors: every socket it holds is a device session that the rest
 * of the system reaches with `gateway.deliver` targeted at this node.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Context, Service, ServiceSchema } from "moleculer";
import ApiGateway from "moleculer-web";
import SocketIOMixin from "moleculer-io";
import type { Server, Socket } from "socket.io";
import { PROTOCOL_VERSION, SOCKET_ACTIONS, type AuthUser, type Role } from "../contract";
import type { Config } from "../config";
import { TokenVerifier, isValidUserId } from "../lib/auth";
import { ParleyError, invalid, rateLimited, toWireError, unavailable } from "../lib/errors";
import type { Delivery } from "../lib/fanout";
import type { SessionInfo } from "../lib/presence/presence-registry";
import { TokenBuckets } from "../lib/rate-limiter";
import { SessionSlots } from "../lib/session-slots";
import { guardPackets } from "../lib/socket-guard";
import { closeWhenUnreadExceeds, type EngineConnection } from "../lib/unread-output";

/** What a socket carries once its handshake is verified. */
interface SessionData {
	user: AuthUser;
	session: SessionInfo;
}

type JsonHandler = (req: IncomingMessage & { $params?: Record<string, unknown> }, res: ServerResponse) => void;

const DEVICE_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export default function gatewayService(config: Config): ServiceSchema {
	const verifier = new TokenVerifier(config.auth, config.mode === "production");
	let logger: Service["logger"] | undefined;
	const limiter = callLimiter(config, (message) => logger?.warn(message));
	const sessionSlots = new SessionSlots(config.limits.maxSessionsPerUser);
	/** Calls and handshakes draw on the same per-user bucket. */
	const spendToken = async (userId: string) => {
		const wait = await limiter.buckets.take(userId);
		if (wait > 0) throw rateLimited(wait);
	};
	let io: Server | undefined;
	let draining: Promise<void> | undefined;
	const unavailableLog = new OverloadLog();

	const sendJson = (res: ServerResponse, status: number, body: unknown) => {
		res.statusCode = status;
		res.setHeader("Content-Type", "application/json; charset=utf-8");
		res.end(JSON.stringify(body));
	};

	const routes: Record<string, JsonHandler> = {
		"GET health": (_req, res) => sendJson(res, 200, { status: "ok" }),
		"HEAD health": (_req, res) => sendJson(res, 200, { status: "ok" }),
		"GET info": (_req, res) =>
			sendJson(res, 200, {
				protocol: PROTOCOL_VERSION,
				mode: config.mode,
				profile: config.profile,
				limits: {
					maxTextLength: config.limits.maxTextLength,
					historyMaxLimit: config.limits.historyMaxLimit,
					syncMaxLimit: config.limits.syncMaxLimit,
					searchMaxLimit: config.limits.searchMaxLimit,
				},
			}),
	};
	if (config.devTokens) {
		routes["POST dev/token"] = (req, res) => {
			const body = (req.$params ?? {}) as { userId?: unknown; name?: unknown; role?: unknown; teams?: unknown };
			const role = (body.role ?? "user") as Role;
			if (!isValidUserId(body.userId) || !["user", "agent", "admin"].includes(role)) {
				return sendJson(
					res,
					422,
					toWireError(invalid("Send a JSON body: userId (1-128 letters, digits or _.:@-) is required; role is user (default), agent or admin")),
				);
			}
			const name = typeof body.name === "string" && body.name.trim() ? body.name.trim().slice(0, 200) : body.userId;
			const teams = Array.isArray(body.teams) ? body.teams.filter((t): t is string => typeof t === "string") : [];
			verifier
				.issue({ userId: body.userId, name, role, teams })
				.then((token) => sendJson(res, 200, { token, userId: body.userId, name, role }))
				.catch((err: Error) => {
					logger?.error("dev token issue failed:", err);
					sendJson(res, 500, toWireError(err));
				});
		};
	}

	return {
		name: "gateway",
		mixins: [ApiGateway, SocketIOMixin],
		// Accept clients only once everything they can call is up.
		dependencies: SOCKET_ACTIONS.map((a) => a.split(".")[0]!).filter((s, i, all) => all.indexOf(s) === i),

		settings: {
			port: config.port,
			ip: config.host,
			cors: { origin: config.corsOrigins, methods: ["GET", "POST"] },
			routes: [
				{
					path: "/api",
					mappingPolicy: "restrict",
					bodyParsers: { json: { limit: "16kb" } },
					aliases: routes,
					onError(_req: IncomingMessage, res: ServerResponse, err: Error) {
						const wire = toWireError(err);
						sendJson(res, wire.code, wire);
					},
				},
			],
			// moleculer-web logs every request at info by default; keep logs for what matters.
			logRequest: null,
			logResponse: null,
			logRouteRegistration: "debug",
			io: {
				options: {
					// Browsers send Origin: refuse pages from origins not configured (the token stays the real check).
					allowRequest: (req: IncomingMessage, callback: (err: string | null, ok: boolean) => void) => {
						const origin = req.headers.origin;
						const allowed = !origin || config.corsOrigins === "*" || config.corsOrigins.includes(origin);
						callback(allowed ? null : "origin not allowed", allowed);
					},
					perMessageDeflate: false,
					maxHttpBufferSize: config.limits.maxPacketBytes,
					cors: { origin: config.corsOrigins },
				},
				namespaces: {
					"/": {
						authorization: true,
						packetMiddlewares: [guardPackets],
						events: {
							call: {
								whitelist: [...SOCKET_ACTIONS],
								async onBeforeCall(_ctx: Context, socket: Socket) {
									await spendToken((socket.data as SessionData).user.id);
								},
							},
						},
					},
				},
			},
		},

		actions: {
			/** Session actors: emit events to sockets held by this node. Not callable from sockets. */
			deliver: {
				visibility: "public",
				params: { items: { type: "array", items: "object" } },
				handler(ctx: Context<{ items: Delivery[] }>) {
					if (!io) return;
					for (const item of ctx.params.items) io.to(item.sessionIds).emit(item.event, item.payload);
				},
			},
		},

		methods: {
			/** Handshake: verify the JWT, admit the session and register it before the client sees `connect`. */
			async socketAuthorize(this: Service, socket: Socket): Promise<AuthUser> {
				const auth = (socket.handshake.auth ?? {}) as { token?: unknown; deviceId?: unknown };
				let user: AuthUser;
				try {
					user = await verifier.verify(auth.token);
					if (auth.deviceId !== undefined && (typeof auth.deviceId !== "string" || !DEVICE_ID.test(auth.deviceId))) {
						throw invalid("deviceId must be 1-128 letters, digits or _.:-");
					}
					// A handshake is a JWT check, a registry write and maybe a presence announcement to every
					// contact: it costs a call token, so connect/disconnect flapping is bounded like calls.
					await spendToken(user.id);
				} catch (err) {
					throw connectError(err);
				}
				// The connection may have closed during those awaits, and its "close" event is gone for
				// good: listening now would never hear it, leaking a slot and leaving a session "online".
				if (socket.conn.readyState !== "open") throw connectError(unavailable("The connection closed during the handshake"));
				if (!sessionSlots.take(user.id)) {
					const max = config.limits.maxSessionsPerUser;
					throw connectError(new ParleyError(`At most ${max} sessions per user: close one first`, 429, "TOO_MANY_SESSIONS", { max }));
				}
				const session: SessionInfo = {
					sessionId: socket.id,
					userId: user.id,
					deviceId: typeof auth.deviceId === "string" ? auth.deviceId : socket.id,
					nodeID: this.broker.nodeID,
				};
				socket.data = { user, session } satisfies SessionData;
				const unregister = () => {
					// Typing timers of this session live on this node.
					this.broker.broadcastLocal("session.closed", session);
					this.broker.call("presence.disconnect", session).catch(() => undefined);
				};
				// The session ends once, at whichever comes first: the socket leaving the namespace (a client
				// may send a Socket.IO DISCONNECT, keep the connection and connect again on it), or the
				// connection closing, which also fires when the socket never finished connecting.
				// Listen before registering: a client gone during registration must still be unregistered.
				let registered = false;
				let ended = false;
				const end = () => {
					if (ended) return;
					ended = true;
					socket.conn.off("close", end); // the connection may carry more sessions: leave no listener behind
					sessionSlots.release(user.id);
					if (registered) unregister();
				};
				socket.conn.once("close", end);
				socket.once("disconnect", end);
				try {
					await this.broker.call("presence.connect", session);
				} catch (err) {
					end();
					throw connectError(err);
				}
				registered = true;
				if (ended) unregister();
				return user;
			},

			/** The device sessions this node holds (presence re-registers them after Redis lost its data). */
			localSessions(): SessionInfo[] {
				if (!io) return [];
				return [...io.of("/").sockets.values()].map((s) => (s.data as Partial<SessionData>).session).filter((s): s is SessionInfo => Boolean(s));
			},

			socketGetMeta(socket: Socket) {
				const data = socket.data as SessionData;
				return { user: data.user, sessionId: data.session.sessionId, deviceId: data.session.deviceId };
			},

			// The user lives in socket.data; nothing a call returns may change it.
			socketSaveMeta() {},

			/**
			 * Drain (on stop, before any other service stops): stop accepting, tell clients,
			 * and close the transports without a Socket.IO disconnect packet, so clients
			 * reconnect on their own (to another gateway, in a cluster) and resume by sync.
			 */
			async drain(this: Service) {
				if (draining) return draining;
				const server = this.server as import("node:http").Server;
				draining = new Promise<void>((resolve) => {
					server.close(() => resolve());
					io?.emit("server.draining", { reconnectInMs: 0 });
					io?.engine.close();
					server.closeAllConnections();
					setTimeout(resolve, 2000).unref();
				});
				return draining;
			},

			socketOnError(this: Service, err: Error, respond: (e: unknown) => void) {
				const wire = toWireError(err);
				if (wire.type === "UNAVAILABLE") unavailableLog.note(err, this.logger);
				else if (wire.code >= 500) this.logger.error("call failed:", err);
				respond(wire);
			},
		},

		created(this: Service) {
			logger = this.logger;
			// A port already in use must stop the process with an error, not leave it idle and exit 0.
			(this.server as import("node:http").Server).once("error", (err: NodeJS.ErrnoException) => {
				// Any listen error (port taken, no permission, an address this host does not have): exit 1.
				this.broker.fatal(`parley: cannot listen on ${config.host}:${config.port} (${err.code ?? err.message})`, err);
			});
		},

		started(this: Service) {
			io = this.io as Server;
			const { maxUnreadBytes } = config.limits;
			io.engine.on("connection", (raw: EngineConnection & { request: unknown }) => {
				// Sockets keep a reference to their upgrade request; dropping it saves memory per connection.
				raw.request = null;
				closeWhenUnreadExceeds(raw, maxUnreadBytes, (unread) => this.logger.info(`closed a connection whose client left ${unread} bytes unread`));
			});
			this.logger.info(`Socket.IO protocol ${PROTOCOL_VERSION} on port ${config.port}`);
			if (config.devTokens) this.logger.warn("DEVELOPMENT MODE: POST /api/dev/token issues tokens to anyone. Never expose this server.");
			if (config.auth.usingDevSecret) this.logger.warn("Using the built-in development JWT secret (set PARLEY_JWT_SECRET).");
		},
		async stopped(this: Service) {
			await this.drain();
			limiter.close();
		},
	} as ServiceSchema;
}

/**
 * Per-user call limits: in memory for one process; in a cluster shared through Redis,
 * so a user cannot multiply their allowance by connecting to several gateways.
 */
function callLimiter(config: Config, warn: (message: string) => void): { buckets: { take(key: string): number | Promise<number> }; close(): void } {
	const { callsPerSecond, callBurst } = config.limits;
	if (config.profile !== "cluster") return { buckets: new TokenBuckets(callsPerSecond, callBurst), close: () => undefined };
	const { RedisTokenBuckets } = require("../lib/redis-rate-limiter") as typeof import("../lib/redis-rate-limiter");
	const { createRedis } = require("../lib/redis") as typeof import("../lib/redis");
	const redis = createRedis(config.cluster.redisUrl);
	// Limits fail open while Redis is away; say so, once per outage (the limiter reports the first failure).
	const buckets = new RedisTokenBuckets(redis, callsPerSecond, callBurst, undefined, (err) => warn(`rate limits are off until Redis answers again: ${err.message}`));
	return { buckets, close: () => redis.disconnect() };
}

/**
 * Socket.IO sends `message` and `data` of a middleware error as the client's connect_error:
 * `data` is the error object without its name (e.g. `data.data.retryAfterMs` when rate limited).
 */
function connectError(err: unknown): Error & { data: unknown } {
	const wire = toWireError(err);
	const type = wire.code === 401 ? "UNAUTHORIZED" : wire.type;
	const error = new Error(type) as Error & { data: unknown };
	error.data = { code: wire.code, type, message: wire.message, ...(wire.data !== undefined && { data: wire.data }) };
	return error;
}


/**
 * UNAVAILABLE answers come in floods (an overloaded node sheds thousands of calls a second, or
 * an engine restarts): one warning per interval with the count and the last cause, not a stack each.
 */
class OverloadLog {
	private count = 0;
	private last: Error | undefined;
	private timer: NodeJS.Timeout | undefined;

	note(err: Error, logger: Service["logger"], intervalMs = 5000): void {
		this.count++;
		this.last = err;
		this.timer ??= setTimeout(() => {
			logger.warn(`${this.count} call(s) answered UNAVAILABLE in the last ${intervalMs / 1000} s; last cause: ${this.last?.name}: ${this.last?.message}`);
			this.count = 0;
			this.timer = undefined;
		}, intervalMs).unref();
	}
}
