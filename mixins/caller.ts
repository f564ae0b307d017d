/** The authenticated caller of a socket action, put in ctx.meta by the gateway. */
import type { Context } from "moleculer";
import type { AuthUser } from "../contract";
import { forbidden, unauthorized } from "../lib/errors";

export interface CallerMeta {
	user?: AuthUser;
	sessionId?: string;
	deviceId?: string;
}

export function callerOf(ctx: Context<unknown, CallerMeta>): AuthUser {
	const user = ctx.meta.user;
	if (!user) throw unauthorized();
	return user;
}

export interface MemberRef {
	userId: string;
	role: "buyer" | "seller";
}

/**
 * The conversation's members if the caller is one of them (invariant 8).
 * NOT_FOUND when the conversation does not exist, FORBIDDEN when it is not theirs.
 */
export async function requireMember(ctx: Context<unknown, CallerMeta>, conversationId: string): Promise<MemberRef[]> {
	const user = callerOf(ctx);
	const members = await ctx.call<MemberRef[], { conversationId: string }>("conversations.members", { conversationId });
	if (!members.some((m) => m.userId === user.id)) throw forbidden("You are not a member of this conversation");
	return members;
}
