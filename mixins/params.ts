/** fastest-validator rules shared by every action that takes these fields. */

/** Conversation and listing ids: short, printable, no spaces. */
export const ID = { type: "string", min: 1, max: 128, pattern: /^[A-Za-z0-9_.:-]+$/ } as const;

export const USER_ID = { type: "string", min: 1, max: 128, pattern: /^[A-Za-z0-9_.:@-]+$/ } as const;

export const SEQ = { type: "number", integer: true, min: 0, max: Number.MAX_SAFE_INTEGER, convert: false } as const;

export const optionalLimit = (max: number) => ({ type: "number", integer: true, min: 1, max, optional: true, convert: false }) as const;

/**
 * Routes an action by conversationId to one node (Moleculer's Shard strategy over a hash ring
 * of the nodes running it), so one node orders each conversation's writes. When nodes join or
 * leave, ownership moves: the store's fence keeps seq dense while two nodes overlap.
 */
export const SHARDED_BY_CONVERSATION = { strategy: "Shard", strategyOptions: { shardKey: "conversationId", vnodes: 32 } } as const;
