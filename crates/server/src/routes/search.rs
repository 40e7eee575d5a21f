//! Search: /embeddings, as the caller's viewer sees the chunks.

use super::*;
use store::IndexSource;

/// POST /embeddings: the chunks that best answer a query, among the
/// customer's, as the viewer may see them.
pub async fn embeddings(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<EmbeddingsRequest>,
) -> ApiResult<Json<EmbeddingsResponse>> {
    let customer = caller.customer_id.clone();
    if !(1..=MAX_K).contains(&request.k) {
        return Err(ApiError::field(
            &["k"],
            format!("must be between 1 and {MAX_K}"),
        ));
    }
    if request.query.chars().count() > 10_000 {
        return Err(ApiError::field(&["query"], "at most 10000 characters"));
    }
    if request.query.trim().is_empty() {
        return Err(ApiError::field(&["query"], "must not be blank"));
    }
    check_ids(&["file_ids"], &request.file_ids, 10_000)?;
    check_ids(&["parent_file_ids"], &request.parent_file_ids, 1000)?;
    check_ids(&["data_source_ids"], &request.data_source_ids, 1000)?;
    if let Some(tags) = &request.tags {
        check_tags(tags)?;
    }
    if request
        .query_vector
        .as_ref()
        .is_some_and(|v| v.is_empty() || v.len() > 8192 || v.iter().any(|x| !x.is_finite()))
    {
        return Err(ApiError::field(
            &["query_vector"],
            "1 to 8192 finite numbers",
        ));
    }
    // An API key's caller (the organisation) says who the viewer is; a
    // customer token's viewer was fixed when it was minted, and a search
    // made with it may narrow that viewer, never widen it.
    let viewer = match (&caller.token_viewer, parse_viewer(&request.viewer)?) {
        (None, asked) => asked.unwrap_or_default(),
        (Some(granted), None) => granted.clone(),
        (Some(granted), Some(asked)) if asked.within(granted) => asked,
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "viewer_not_allowed",
                "a customer token searches as the viewer it was minted for, or a narrower one",
            ))
        }
    };
    let hybrid = match (
        request.hybrid_search.unwrap_or(false),
        &request.hybrid_search_tuning_parameters,
    ) {
        (false, _) => None,
        (true, None) => Some(index::HybridWeights::default()),
        // Scaled to sum to 1, as the document says (both 0: the defaults).
        (true, Some(t)) => {
            let sum = t.weight_a + t.weight_b;
            if !(t.weight_a >= 0.0 && t.weight_b >= 0.0 && sum.is_finite()) {
                return Err(ApiError::field(
                    &["hybrid_search_tuning_parameters"],
                    "weight_a and weight_b must be at least 0",
                ));
            }
            Some(if sum > 0.0 {
                index::HybridWeights {
                    weight_a: t.weight_a / sum,
                    weight_b: t.weight_b / sum,
                }
            } else {
                index::HybridWeights::default()
            })
        }
    };
    if hybrid.is_some() && request.query_vector.is_none() && !app.index.has_embedder() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "embeddings_not_configured",
            "hybrid search needs an embedding provider (the server has none configured) or a query_vector",
        ));
    }
    let Some(user) = super::end_user(&app, &caller).await? else {
        return Ok(Json(EmbeddingsResponse {
            documents: Vec::new(),
        }));
    };
    let mut filters = index::Filters {
        tags: request.tags.clone().unwrap_or_default(),
        ..Default::default()
    };
    let mut file_ids: Option<Vec<i64>> = request.file_ids.clone();
    if let Some(parents) = &request.parent_file_ids {
        let mut children = Vec::new();
        for parent in parents {
            // Only the customer's own files are expanded.
            if app
                .store
                .file_connection(&caller.organisation.id, &user.id, *parent)
                .await?
                .is_none()
            {
                continue;
            }
            if request.include_all_children {
                children.extend(
                    app.store
                        .subtree(&[*parent])
                        .await?
                        .into_iter()
                        .filter(|id| id != parent),
                );
            } else {
                let query = store::FileQuery {
                    parent_file_ids: vec![*parent],
                    limit: 10_000,
                    ..Default::default()
                };
                let (files, _) = app
                    .store
                    .api_files(&caller.organisation.id, &user.id, &query)
                    .await?;
                children.extend(files.iter().map(|f| f.id));
            }
        }
        file_ids = Some(match file_ids {
            Some(ids) => ids.into_iter().filter(|id| children.contains(id)).collect(),
            None => children,
        });
    }
    if let Some(ids) = file_ids {
        if ids.is_empty() {
            return Ok(Json(EmbeddingsResponse {
                documents: Vec::new(),
            }));
        }
        filters.file_ids = ids;
    }
    if let Some(sources) = &request.data_source_ids {
        let (connections, _) = app
            .store
            .data_sources(
                &caller.organisation.id,
                &user.id,
                sources,
                None,
                true,
                false,
                1000,
                0,
            )
            .await?;
        if connections.is_empty() {
            return Ok(Json(EmbeddingsResponse {
                documents: Vec::new(),
            }));
        }
        filters.connection_ids = connections.into_iter().map(|c| c.id).collect();
    }
    let search = index::SearchRequest {
        organisation_id: caller.organisation.id.clone(),
        customer_id: Some(customer.clone()),
        viewer,
        query: request.query.clone(),
        query_vector: request.query_vector.clone(),
        k: request.k as usize,
        filters,
        hybrid,
        include_vectors: request.include_vectors.unwrap_or(false),
        // Carbon's k chunks, several of one file if they rank so.
        per_file: None,
    };
    let hits = app
        .index
        .search(&app.store, &search)
        .await
        .map_err(|e| match e {
            index::Error::Invalid(message) => ApiError::bad_request("invalid_search", message),
            index::Error::Embed(message) => ApiError::bad_gateway(
                "embedding_failed",
                format!("the embedding provider failed: {message}"),
            ),
            other => ApiError::internal(other),
        })?;
    let include_tags = request.include_tags.unwrap_or(false);
    let mut tags_of: BTreeMap<i64, Value> = BTreeMap::new();
    if include_tags && !hits.is_empty() {
        let query = store::FileQuery {
            ids: hits.iter().map(|h| h.file_id).collect(),
            limit: 1000,
            ..Default::default()
        };
        let (files, _) = app
            .store
            .api_files(&caller.organisation.id, &user.id, &query)
            .await?;
        tags_of = files.into_iter().map(|f| (f.id, f.tags)).collect();
    }
    let documents = hits
        .into_iter()
        .enumerate()
        .map(|(rank, hit)| Document {
            content: hit.content,
            file_id: hit.file_id,
            parent_file_id: None,
            source: Some(hit.title.clone()),
            source_url: hit.url.clone(),
            source_type: Some("CONFLUENCE".into()),
            presigned_url: None,
            tags: include_tags.then(|| tags_of.get(&hit.file_id).cloned().unwrap_or(json!({}))),
            vector: hit.vector,
            score: Some(hit.score),
            rank: Some(rank as i64 + 1),
            content_metadata: Some(json!({
                "title": hit.title,
                "heading_path": hit.heading_path,
                "space_key": hit.space_key,
                "kind": hit.kind,
                "external_id": hit.external_id,
                "labels": hit.labels,
                "snippet": hit.snippet,
            })),
            chunk_index: Some(hit.chunk_index),
        })
        .collect();
    Ok(Json(EmbeddingsResponse { documents }))
}
