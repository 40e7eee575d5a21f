//! White labels: an organisation's own OAuth app.

use super::*;

pub(crate) fn check_white_label(input: &WhiteLabelInput, at: &str) -> ApiResult<()> {
    if input.data_source_type != "CONFLUENCE" {
        return Err(ApiError::field(
            &[at, "data_source_type"],
            "only CONFLUENCE is supported",
        ));
    }
    let c = &input.credentials;
    if c.client_id.is_empty() || c.client_id.chars().count() > 255 {
        return Err(ApiError::field(
            &[at, "credentials", "client_id"],
            "1 to 255 characters",
        ));
    }
    if c.client_secret
        .as_ref()
        .is_some_and(|s| s.expose().is_empty() || s.expose().chars().count() > 1024)
    {
        return Err(ApiError::field(
            &[at, "credentials", "client_secret"],
            "1 to 1024 characters",
        ));
    }
    let redirect = url::Url::parse(&c.redirect_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
    if redirect.is_none() || c.redirect_uri.len() > 2048 {
        return Err(ApiError::field(
            &[at, "credentials", "redirect_uri"],
            "an http(s) URL",
        ));
    }
    Ok(())
}

pub(crate) fn white_label_out(
    organisation: &Organisation,
    label: store::WhiteLabel,
) -> WhiteLabelOut {
    WhiteLabelOut {
        id: label.id,
        organization_id: organisation.number,
        data_source_type: label.data_source_type,
        credentials: json!({
            "client_id": label.client_id,
            "redirect_uri": label.redirect_uri,
            "has_client_secret": label.has_client_secret,
        }),
        created_at: label.created_at,
        updated_at: label.updated_at,
    }
}

/// POST /white_label/create (a list of inputs)
pub async fn white_label_create(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(WhiteLabelCreateRequest(inputs)): Body<WhiteLabelCreateRequest>,
) -> ApiResult<Json<WhiteLabelListResponse>> {
    if inputs.is_empty() || inputs.len() > 20 {
        return Err(ApiError::field(&[], "give 1 to 20 white labels"));
    }
    for (i, input) in inputs.iter().enumerate() {
        check_white_label(input, &i.to_string())?;
    }
    let mut out = Vec::new();
    for input in &inputs {
        let label = app
            .store
            .create_white_label(
                &caller.organisation.id,
                &input.data_source_type,
                &input.credentials.client_id,
                &input.credentials.redirect_uri,
                input
                    .credentials
                    .client_secret
                    .as_ref()
                    .map(SecretText::expose),
            )
            .await
            .map_err(|e| match e {
                store::Error::Invalid(m) => {
                    ApiError::new(StatusCode::CONFLICT, "white_label_exists", m)
                }
                other => other.into(),
            })?;
        out.push(white_label_out(&caller.organisation, label));
    }
    // An object, as Carbon's SDKs read it (Go's decodes a map), in the
    // shape of the list.
    Ok(Json(WhiteLabelListResponse {
        count: out.len() as i64,
        results: out,
    }))
}

/// POST /white_label/list
pub async fn white_label_list(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<WhiteLabelListRequest>,
) -> ApiResult<Json<WhiteLabelListResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    check_ids(&["filters", "ids"], &request.filters.ids, 1000)?;
    check_ids(
        &["filters", "data_source_type"],
        &request.filters.data_source_type,
        100,
    )?;
    let (labels, count) = app
        .store
        .white_labels(
            &caller.organisation.id,
            request.filters.ids.as_deref().unwrap_or(&[]),
            request.filters.data_source_type.as_deref().unwrap_or(&[]),
            request.order_dir == OrderDir::Desc,
            limit,
            offset,
        )
        .await?;
    Ok(Json(WhiteLabelListResponse {
        results: labels
            .into_iter()
            .map(|l| white_label_out(&caller.organisation, l))
            .collect(),
        count,
    }))
}

/// POST /white_label/update
pub async fn white_label_update(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(input): Body<WhiteLabelInput>,
) -> ApiResult<Json<WhiteLabelOut>> {
    check_white_label(&input, "credentials")?;
    let label = app
        .store
        .update_white_label(
            &caller.organisation.id,
            &input.data_source_type,
            &input.credentials.client_id,
            &input.credentials.redirect_uri,
            input
                .credentials
                .client_secret
                .as_ref()
                .map(SecretText::expose),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("white label"))?;
    Ok(Json(white_label_out(&caller.organisation, label)))
}

/// POST /white_label/delete
pub async fn white_label_delete(
    State(app): State<AppState>,
    caller: OrgCaller,
    Body(request): Body<WhiteLabelDeleteRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    if request.ids.is_empty() || request.ids.len() > 100 {
        return Err(ApiError::field(&["ids"], "give 1 to 100 ids"));
    }
    let removed = app
        .store
        .delete_white_labels(&caller.organisation.id, &request.ids)
        .await?;
    if removed == 0 {
        return Err(ApiError::not_found("white label"));
    }
    Ok(Json(SuccessResponse { success: true }))
}
