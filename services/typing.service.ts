/**
 * typing: ephemeral "is typing" state, never stored. Only changes are fanned
 * out; a typing flag expires `typingTtlMs` after its last refresh and at once
 * when the session that set it goes away.
 */
import type { Context, Service, ServiceSchema } from "moleculer";
import type { ParamsOf, TypingEvent } from "../contract";
import type { Config } from "../config";
import type { SessionInfo } from "../lib/presence/presence-registry";
import { callerOf, requireMember, type CallerMeta } from "../mixins/caller";
import { Fanout, withFanout } from "../mixins/fanout.mixin";
import { ID } from "../mixins/params";

interface Typist {
	conversationId: string;
	userId: string;
	sessionId: string | undefined;
	memberIds: string[];
	timer: NodeJS.Timeout;
	/** When the others were last told (typing: true). */
	announcedAt: number;
}

export default function typingService(config: Config): ServiceSchema {
	const fanout = new Fanout();
	const typists = new Map<string, Typist>();
	let service: Service;

	/**
	 * `typing: true` carries expiresInMs: clients stop showing it by themselves after that, so a
	 * gateway that dies (and can never send `false`) leaves no indicator on forever. While the
	 * user keeps typing, the others are told again every third of the TTL.
	 */
	const announce = (t: Pick<Typist, "conversationId" | "userId" | "memberIds">, typing: boolean) => {
		const event: TypingEvent = typing
			? { conversationId: t.conversationId, userId: t.userId, typing, expiresInMs: config.typingTtlMs }
			: { conversationId: t.conversationId, userId: t.userId, typing };
		const others = t.memberIds.filter((id) => id !== t.userId);
		fanout.toUsers(others, "typing", event).catch((err: Error) => service.logger.warn("typing fan-out failed:", err.message));
	};

	const stop = (key: string) => {
		const t = typists.get(key);
		if (!t) return;
		clearTimeout(t.timer);
		typists.delete(key);
		announce(t, false);
	};

	return {
		name: "typing",
		mixins: [withFanout(fanout)],

		created(this: Service) {
			service = this;
		},

		stopped() {
			for (const t of typists.values()) clearTimeout(t.timer);
			typists.clear();
		},

		actions: {
			set: {
				visibility: "published",
				params: { conversationId: ID, typing: { type: "boolean", convert: false } },
				async handler(ctx: Context<ParamsOf<"typing.set">, CallerMeta>): Promise<{ ok: true }> {
					const user = callerOf(ctx);
					const { conversationId, typing } = ctx.params;
					const members = await requireMember(ctx, conversationId);
					const key = `${conversationId}\u0000${user.id}`;
					const current = typists.get(key);
					if (!typing) {
						stop(key);
						return { ok: true };
					}
					if (current) clearTimeout(current.timer);
					const now = Date.now();
					const tellAgain = !current || now - current.announcedAt >= config.typingTtlMs / 3;
					const typist: Typist = {
						conversationId,
						userId: user.id,
						sessionId: ctx.meta.sessionId,
						memberIds: members.map((m) => m.userId),
						timer: setTimeout(() => stop(key), config.typingTtlMs),
						announcedAt: tellAgain ? now : current.announcedAt,
					};
					typists.set(key, typist);
					if (tellAgain) announce(typist, true);
					return { ok: true };
				},
			},
		},

		events: {
			"session.closed"(ctx: Context<SessionInfo>) {
				for (const [key, t] of typists) if (t.sessionId === ctx.params.sessionId) stop(key);
			},
		},
	};
}
