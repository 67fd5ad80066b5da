//! The rewards catalogue's part of the OpenAPI document (`http/rewards.rs`).

use super::*;

const VIEW: &str = "only admin, analyst and pos keys may do this";
const REDEEM_ROLES: &str = "only admin and pos keys may do this";

pub(super) fn ops() -> Vec<(&'static str, &'static str, Op)> {
    let id = || path_param("id", "reward id");
    let rid = || path_param("id", "redemption id (the `id` of the redemption, not the client's `redemption_id`)");
    let cursor = || query("cursor", "`next_cursor` of the previous page", string());
    vec![
        (
            "/api/v1/rewards",
            "post",
            Op::new("createReward", "rewards", "Create a reward")
                .describe("Audited. `code` is unique among the rewards that are not archived.")
                .json_body(r("RewardInput"))
                .resp("201", ok("the reward", r("Reward")))
                .e400()
                .e403(ADMIN_ONLY)
                .e409("`reward_exists`: a reward with this code exists")
                .e422("`validation_error` (including a tier the programme does not have)"),
        ),
        (
            "/api/v1/rewards",
            "get",
            Op::new("listRewards", "rewards", "List the rewards, oldest first")
                .param(limit(100, 500))
                .param(cursor())
                .param(query("include_archived", "also list archived rewards", json!({"type": "boolean", "default": false})))
                .resp("200", ok("a page of rewards", r("RewardPage")))
                .e403(VIEW)
                .e422("`validation_error`: a bad `limit` or flag, or an unknown query parameter"),
        ),
        (
            "/api/v1/rewards/{id}",
            "get",
            Op::new("getReward", "rewards", "Read a reward")
                .param(id())
                .resp("200", ok("the reward", r("Reward")))
                .e403(VIEW)
                .e404("`not_found`: no such reward"),
        ),
        (
            "/api/v1/rewards/{id}",
            "put",
            Op::new("replaceReward", "rewards", "Replace a reward")
                .describe(
                    "Fields left out take their defaults. Read-only fields are ignored. An identical PUT makes no new \
                     version. `stock` is the number of units offered in total; units already redeemed stay counted.",
                )
                .param(id())
                .json_body(r("RewardInput"))
                .resp("200", ok("the reward", r("Reward")))
                .e400()
                .e403(ADMIN_ONLY)
                .e404("`not_found`: no such reward")
                .e409("`reward_exists` (the code is taken) or `reward_archived`")
                .e422(VALIDATION),
        ),
        (
            "/api/v1/rewards/{id}",
            "delete",
            Op::new("archiveReward", "rewards", "Archive a reward")
                .describe("It leaves the catalogue and cannot be redeemed; its redemptions can still be fulfilled or cancelled.")
                .param(id())
                .resp("200", ok("the archived reward", r("Reward")))
                .e403(ADMIN_ONLY)
                .e404("`not_found`: no such reward"),
        ),
        (
            "/api/v1/members/{id}/rewards",
            "get",
            Op::new("getMemberRewards", "rewards", "The catalogue as a member sees it, with why each reward cannot be redeemed")
                .param(path_param("id", "member id"))
                .param(limit(100, 500))
                .param(cursor())
                .resp("200", ok("the member's catalogue", r("MemberRewards")))
                .e403(VIEW)
                .e404("`not_found`: no such member")
                .e422("`validation_error`: a bad `limit` or an unknown query parameter"),
        ),
        (
            "/api/v1/members/{id}/rewards/{reward_id}/redeem",
            "post",
            Op::new("redeemReward", "rewards", "Redeem a reward for points")
                .describe(
                    "One transaction: takes a unit of stock, debits the points (soonest-expiring lots first, a `redeem` \
                     ledger entry), issues a random code. Idempotent on `redemption_id`, tenant-wide: the same body \
                     returns the first answer.",
                )
                .param(path_param("id", "member id"))
                .param(path_param("reward_id", "reward id"))
                .json_body(r("RedeemInput"))
                .resp("201", ok("the redemption, with the member's balance after it", r("RedemptionIssued")))
                .e400()
                .e403(REDEEM_ROLES)
                .e404("`not_found`: no such member or reward")
                .e409("`redemption_conflict`: the redemption_id was used with another body")
                .e422(
                    "`validation_error`, then in this order: `reward_unavailable` (inactive, archived, not yet valid or \
                     ended), `tier_not_eligible`, `out_of_stock`, `reward_limit_reached`, `insufficient_points`",
                ),
        ),
        (
            "/api/v1/reward-redemptions",
            "get",
            Op::new("listRedemptions", "rewards", "List redemptions, newest first")
                .param(limit(100, 500))
                .param(cursor())
                .param(query("member_id", "only this member's", string()))
                .param(query("reward_id", "only this reward's", string()))
                .param(query("status", "only this status", json!({"type": "string", "enum": ["issued", "fulfilled", "cancelled"]})))
                .resp("200", ok("a page of redemptions", r("RedemptionPage")))
                .e403(ADMIN_ANALYST)
                .e422("`validation_error`: a bad `limit` or `status`, or an unknown query parameter"),
        ),
        (
            "/api/v1/reward-redemptions/lookup",
            "post",
            Op::new("lookupRedemption", "rewards", "Find a redemption by its code")
                .describe("Case, spaces and hyphens in the code are ignored. Pos keys are rate limited.")
                .json_body(r("RedemptionLookupInput"))
                .resp("200", ok("the redemption", r("Redemption")))
                .e400()
                .e403(VIEW)
                .e404("`not_found`: no redemption has this code")
                .e422(VALIDATION)
                .resp("429", err("`rate_limited`: too many lookups by this pos key")),
        ),
        (
            "/api/v1/reward-redemptions/{id}",
            "get",
            Op::new("getRedemption", "rewards", "Read a redemption")
                .param(rid())
                .resp("200", ok("the redemption", r("Redemption")))
                .e403(VIEW)
                .e404("`not_found`: no such redemption"),
        ),
        (
            "/api/v1/reward-redemptions/{id}/fulfil",
            "post",
            Op::new("fulfilRedemption", "rewards", "Hand the reward over (issued → fulfilled)")
                .describe("Fulfilling a fulfilled redemption answers it unchanged. The body is optional.")
                .param(rid())
                .body(json!({"required": false, "content": {"application/json": {"schema": r("FulfilInput")}}}))
                .resp("200", ok("the redemption", r("Redemption")))
                .e400()
                .e403(REDEEM_ROLES)
                .e404("`not_found`: no such redemption")
                .e409("`redemption_cancelled`")
                .e422(VALIDATION),
        ),
        (
            "/api/v1/reward-redemptions/{id}/cancel",
            "post",
            Op::new("cancelRedemption", "rewards", "Cancel a redemption and return its points")
                .describe(
                    "issued → cancelled: the points go back to the lots they came from, keeping their expiry, with a \
                     `return_redeem` entry, and the unit goes back to stock. Cancelling a cancelled redemption answers it \
                     unchanged. A pos key may cancel only what its own store issued. The body is optional.",
                )
                .param(rid())
                .body(json!({"required": false, "content": {"application/json": {"schema": r("CancelRedemptionInput")}}}))
                .resp("200", ok("the redemption, with the member's balance after it", r("RedemptionIssued")))
                .e400()
                .e403("`forbidden`: only admin and pos keys, and a pos key only for its own store's redemptions")
                .e404("`not_found`: no such redemption")
                .e409("`redemption_fulfilled`: the reward was handed over")
                .e422(VALIDATION),
        ),
    ]
}

pub(super) fn schemas() -> Value {
    let kind = || json!({"type": "string", "enum": ["gift", "discount", "voucher", "gift_certificate", "coupon"]});
    let ro = |d: &str| json!({"readOnly": true, "description": format!("read-only; ignored{d}")});
    let reward_props = json!({
        "id": string(),
        "code": string(),
        "name": string(),
        "description": string(),
        "kind": kind(),
        "campaign_id": nullable(describe(string(), "coupon rewards: the coupon campaign (reserved for the coupon engine)")),
        "points_price": int(),
        "stock": nullable(describe(int(), "units offered in total; null: unlimited")),
        "stock_left": nullable(describe(int(), "stock − redeemed_count, at least 0; null: unlimited")),
        "redeemed_count": describe(int(), "redemptions issued or fulfilled"),
        "valid_from": nullable(time()),
        "valid_to": nullable(time()),
        "tiers": describe(array(string()), "tier codes allowed; empty: every member"),
        "per_member_limit": nullable(int()),
        "active": boolean(),
        "archived": boolean(),
        "archived_at": nullable(time()),
        "image_url": nullable(string()),
        "version": int(),
        "created_at": time(),
        "updated_at": time(),
    });
    let reward_required = [
        "id",
        "code",
        "name",
        "description",
        "kind",
        "campaign_id",
        "points_price",
        "stock",
        "stock_left",
        "redeemed_count",
        "valid_from",
        "valid_to",
        "tiers",
        "per_member_limit",
        "active",
        "archived",
        "archived_at",
        "image_url",
        "version",
        "created_at",
        "updated_at",
    ];
    let redemption_props = json!({
        "id": string(),
        "redemption_id": describe(string(), "the client's idempotency key"),
        "reward_id": string(),
        "reward_code": string(),
        "reward_name": string(),
        "kind": kind(),
        "campaign_id": nullable(string()),
        "member_id": string(),
        "points": describe(int(), "points debited"),
        "code": describe(string(), "12 symbols from 23456789ABCDEFGHJKLMNPQRSTUVWXYZ (60 random bits)"),
        "status": {"type": "string", "enum": ["issued", "fulfilled", "cancelled"]},
        "store_id": nullable(describe(string(), "the store of the pos key that redeemed it")),
        "created_at": time(),
        "fulfilled_at": nullable(time()),
        "cancelled_at": nullable(time()),
    });
    let redemption_required = [
        "id",
        "redemption_id",
        "reward_id",
        "reward_code",
        "reward_name",
        "kind",
        "campaign_id",
        "member_id",
        "points",
        "code",
        "status",
        "store_id",
        "created_at",
        "fulfilled_at",
        "cancelled_at",
    ];
    let mut member_reward_props = reward_props.clone();
    member_reward_props["can_redeem"] = boolean();
    member_reward_props["reason_code"] = nullable(describe(
        string(),
        "why not: reward_unavailable, tier_not_eligible, out_of_stock, reward_limit_reached or insufficient_points",
    ));
    member_reward_props["reason"] = nullable(describe(string(), "why not, for a cashier: \"needs 350 more points\", \"gold tier only\""));
    member_reward_props["member_redeemed"] = describe(int(), "this member's redemptions of it, issued or fulfilled");
    let mut member_reward_required: Vec<&str> = reward_required.to_vec();
    member_reward_required.extend(["can_redeem", "reason_code", "reason", "member_redeemed"]);
    json!({
        "RewardInput": strict(&["code", "name", "points_price"], json!({
            "code": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"},
            "name": text(200),
            "description": {"type": "string", "maxLength": 2000},
            "kind": describe(kind(), "defaults to gift"),
            "campaign_id": describe(text(64), "only for kind coupon"),
            "points_price": int_range(1, MAX),
            "stock": describe(int_range(0, MAX), "units offered in total; left out: unlimited"),
            "valid_from": describe(time(), "inclusive"),
            "valid_to": describe(time(), "exclusive; after valid_from"),
            "tiers": describe(array(text(64)), "tier codes of the programme; empty or left out: every member"),
            "per_member_limit": describe(int_range(1, MAX), "left out: unlimited"),
            "active": describe(boolean(), "defaults to true"),
            "image_url": describe(text(2000), "an http(s) URL"),
            "id": ro(""),
            "stock_left": ro(""),
            "redeemed_count": ro(""),
            "archived": ro(""),
            "archived_at": ro(" (archive with DELETE)"),
            "version": ro(""),
            "created_at": ro(""),
            "updated_at": ro(""),
        })),
        "Reward": object(&reward_required, reward_props),
        "RewardPage": object(&["rewards", "next_cursor"], json!({"rewards": array(r("Reward")), "next_cursor": nullable(string())})),
        "MemberRewards": object(&["member_id", "points_available", "tier", "rewards", "next_cursor"], json!({
            "member_id": string(),
            "points_available": describe(int(), "points free to spend: balance − held − the programme's min_balance"),
            "tier": nullable(string()),
            "rewards": array(object(&member_reward_required, member_reward_props)),
            "next_cursor": nullable(string()),
        })),
        "RedeemInput": strict(&["redemption_id"], json!({"redemption_id": describe(text(128), "the client's idempotency key")})),
        "Redemption": object(&redemption_required, redemption_props),
        "RedemptionIssued": {"allOf": [r("Redemption"), object(&["balance"], json!({"balance": balance()}))]},
        "RedemptionPage": object(&["redemptions", "next_cursor"], json!({
            "redemptions": array(r("Redemption")),
            "next_cursor": nullable(string()),
        })),
        "RedemptionLookupInput": strict(&["code"], json!({"code": text(64)})),
        "FulfilInput": strict(&[], json!({"note": describe(text(500), "kept in the audit log")})),
        "CancelRedemptionInput": strict(&[], json!({"reason": describe(text(500), "kept in the audit log")})),
    })
}
