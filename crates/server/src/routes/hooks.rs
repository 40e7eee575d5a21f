//! Webhooks: at most a few per organisation, signed as Carbon signs them.

use super::*;

pub(crate) fn webhook_no_key(organisation: &Organisation, hook: store::WebhookRow) -> WebhookNoKey {
    WebhookNoKey {
        id: hook.id,
        organization_id: organisation.number,
        url: hook.url,
        status: hook.status,
        status_reason: hook.status_reason,
        created_at: hook.created_at,
        updated_at: hook.updated_at,
    }
}

/// POST /add_webhook
pub async fn add_webhook(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<AddWebhookRequest>,
) -> ApiResult<Json<WebhookOut>> {
    if request.url.len() > 2048 {
        return Err(ApiError::field(&["url"], "at most 2048 characters"));
    }
    crate::webhooks::check_target(&request.url, app.config.webhooks.allow_private_targets)
        .await
        .map_err(|refused| {
            ApiError::field(&["url"], format!("the webhook URL {}", refused.reason))
        })?;
    let (_, count) = app
        .store
        .webhooks(&caller.organisation.id, &[], true, false, 1, 0)
        .await?;
    if count as usize >= app.config.webhooks.max_per_organisation {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "webhook_limit",
            format!(
                "an organisation may have {} webhooks; delete one first",
                app.config.webhooks.max_per_organisation
            ),
        ));
    }
    let key = hex::encode(rand::thread_rng().gen::<[u8; 32]>());
    let hook = app
        .store
        .add_webhook(&caller.organisation.id, &request.url, key.as_bytes())
        .await?;
    Ok(Json(WebhookOut {
        id: hook.id,
        organization_id: caller.organisation.number,
        url: hook.url,
        signing_key: SecretText::new(key),
        status: hook.status,
        status_reason: hook.status_reason,
        created_at: hook.created_at,
        updated_at: hook.updated_at,
    }))
}

/// POST /webhooks
pub async fn list_webhooks(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<WebhooksRequest>,
) -> ApiResult<Json<WebhooksResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    check_ids(&["filters", "ids"], &request.filters.ids, 1000)?;
    let (hooks, count) = app
        .store
        .webhooks(
            &caller.organisation.id,
            request.filters.ids.as_deref().unwrap_or(&[]),
            request.order_by == CreatedOrUpdated::CreatedAt,
            request.order_dir == OrderDir::Desc,
            limit,
            offset,
        )
        .await?;
    Ok(Json(WebhooksResponse {
        results: hooks
            .into_iter()
            .map(|h| webhook_no_key(&caller.organisation, h))
            .collect(),
        count,
    }))
}

/// DELETE /delete_webhook/{webhook_id}
pub async fn delete_webhook(
    State(app): State<AppState>,
    caller: OrgCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<SuccessResponse>> {
    let id = path_id("webhook_id", &id)?;
    if !app
        .store
        .delete_webhook(&caller.organisation.id, id)
        .await?
    {
        return Err(ApiError::not_found("webhook"));
    }
    Ok(Json(SuccessResponse { success: true }))
}
