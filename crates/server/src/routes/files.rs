//! Files: listing them with their statuses, fetching one again, deleting
//! by filter (answered once search reflects it).

use super::*;

pub const STATUSES: [&str; 10] = [
    "DELAYED",
    "QUEUED_FOR_SYNC",
    "SYNCING",
    "READY",
    "SYNC_ERROR",
    "EVALUATING_RESYNC",
    "RATE_LIMITED",
    "SYNC_ABORTED",
    "QUEUED_FOR_OCR",
    "READY_TO_SYNC",
];

pub(crate) fn file_query(filters: &FileFilters) -> ApiResult<Option<store::FileQuery>> {
    check_ids(&["filters", "ids"], &filters.ids, 1000)?;
    check_ids(
        &["filters", "external_file_ids"],
        &filters.external_file_ids,
        1000,
    )?;
    check_ids(
        &["filters", "parent_file_ids"],
        &filters.parent_file_ids,
        1000,
    )?;
    check_ids(
        &["filters", "organization_user_data_source_id"],
        &filters.organization_user_data_source_id,
        1000,
    )?;
    if let Some(tags) = &filters.tags {
        check_tags(tags)?;
    }
    let statuses = filters.sync_statuses.clone().unwrap_or_default();
    if let Some(bad) = statuses.iter().find(|s| !STATUSES.contains(&s.as_str())) {
        return Err(ApiError::field(
            &["filters", "sync_statuses"],
            format!("{bad:?} is not a sync status"),
        ));
    }
    // Another source than Confluence matches nothing here.
    let confluence = match &filters.source {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s == "CONFLUENCE",
        Some(Value::Array(list)) => list.iter().any(|s| s == "CONFLUENCE"),
        Some(_) => {
            return Err(ApiError::field(
                &["filters", "source"],
                "a source type or a list of them",
            ))
        }
    };
    // A list given empty matches nothing: `"ids": []` names no file, and
    // must never read as "no filter" (which, in a delete, is every file).
    let empty = |list: &Option<Vec<i64>>| list.as_ref().is_some_and(Vec::is_empty);
    if !confluence
        || empty(&filters.ids)
        || empty(&filters.parent_file_ids)
        || empty(&filters.organization_user_data_source_id)
        || filters
            .external_file_ids
            .as_ref()
            .is_some_and(Vec::is_empty)
        || filters.sync_statuses.as_ref().is_some_and(Vec::is_empty)
    {
        return Ok(None);
    }
    Ok(Some(store::FileQuery {
        ids: filters.ids.clone().unwrap_or_default(),
        external_ids: filters.external_file_ids.clone().unwrap_or_default(),
        statuses,
        data_source_ids: filters
            .organization_user_data_source_id
            .clone()
            .unwrap_or_default(),
        parent_file_ids: filters.parent_file_ids.clone().unwrap_or_default(),
        name: filters.name.clone().filter(|n| !n.is_empty()),
        tags: filters.tags.clone().unwrap_or_default(),
        ..Default::default()
    }))
}

/// A file's status as callers see it: READY only once it is searchable.
pub(crate) fn visible_status(file: &store::ApiFile) -> String {
    if file.status == "READY" && file.pending_index {
        "SYNCING".into()
    } else {
        file.status.clone()
    }
}

/// Carbon's FileFormats value for a file: CONFLUENCE for pages, blog posts
/// and comments (Carbon's format for a source's own documents); for an
/// attachment, its media type's (else its extension's) format, or none
/// when Carbon's list has no such format.
pub(crate) fn file_format(
    kind: &str,
    media_type: Option<&str>,
    title: &str,
) -> Option<&'static str> {
    if kind != "attachment" {
        return Some("CONFLUENCE");
    }
    let by_type = match media_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "text/plain" => Some("TXT"),
        "text/csv" => Some("CSV"),
        "text/tab-separated-values" => Some("TSV"),
        "application/pdf" => Some("PDF"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Some("DOCX"),
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => Some("PPTX"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some("XLSX"),
        "application/vnd.ms-excel.sheet.macroenabled.12" => Some("XLSM"),
        "text/markdown" => Some("MD"),
        "application/rtf" | "text/rtf" => Some("RTF"),
        "application/json" => Some("JSON"),
        "text/html" => Some("HTML"),
        "image/jpeg" => Some("JPG"),
        "image/png" => Some("PNG"),
        "audio/mpeg" => Some("MP3"),
        "audio/aac" => Some("AAC"),
        "audio/wav" | "audio/x-wav" | "audio/wave" => Some("WAV"),
        "audio/flac" => Some("FLAC"),
        "audio/ogg" => Some("OGG"),
        "audio/opus" => Some("OPUS"),
        "audio/mp4" | "audio/x-m4a" => Some("M4A"),
        "video/mp4" => Some("MP4"),
        "video/mpeg" => Some("MPEG"),
        "video/webm" => Some("WEBM"),
        "video/quicktime" => Some("MOV"),
        "video/x-msvideo" => Some("AVI"),
        "video/x-matroska" => Some("MKV"),
        "video/x-ms-wmv" => Some("WMV"),
        "message/rfc822" => Some("EML"),
        "application/vnd.ms-outlook" => Some("MSG"),
        _ => None,
    };
    by_type.or_else(|| {
        let extension = title.rsplit_once('.')?.1.to_ascii_lowercase();
        Some(match extension.as_str() {
            "txt" => "TXT",
            "csv" => "CSV",
            "tsv" => "TSV",
            "pdf" => "PDF",
            "docx" => "DOCX",
            "pptx" => "PPTX",
            "xlsx" => "XLSX",
            "xlsm" => "XLSM",
            "md" => "MD",
            "rtf" => "RTF",
            "json" => "JSON",
            "html" | "htm" => "HTML",
            "jpg" | "jpeg" => "JPG",
            "png" => "PNG",
            "mp3" => "MP3",
            "mp4" => "MP4",
            "wav" => "WAV",
            "eml" => "EML",
            "msg" => "MSG",
            _ => return None,
        })
    })
}

pub(crate) fn user_file(
    file: store::ApiFile,
    status: String,
    organisation: &Organisation,
    user: &EndUser,
) -> UserFile {
    // A listing builds a hundred of these: each field is moved out of the
    // file, and copied only where Carbon's shape says it twice.
    let file_format = file_format(&file.kind, file.media_type.as_deref(), &file.title);
    UserFile {
        id: file.id,
        source: "CONFLUENCE",
        organization_id: organisation.number,
        organization_user_id: Some(user.number),
        organization_supplied_user_id: user.customer_id.clone(),
        organization_user_data_source_id: Some(file.data_source_id),
        external_file_id: file.external_id,
        external_url: file.url,
        sync_status: status,
        sync_error_message: file.error,
        last_sync: Some(file.updated_at.clone()),
        tags: Some(file.tags),
        file_statistics: Some(FileStatistics {
            file_format,
            file_size: file.size_bytes.unwrap_or(file.characters),
            num_characters: file.characters,
            num_embeddings: file.chunks,
            mime_type: file.media_type.clone(),
        }),
        name: Some(file.title.clone()),
        file_metadata: Some(FileMetadata {
            kind: file.kind,
            title: file.title,
            version: file.version,
            media_type: file.media_type,
        }),
        embedding_properties: None,
        chunk_size: Some(file.chunk_size),
        chunk_overlap: Some(file.chunk_overlap),
        chunk_properties: None,
        ocr_properties: json!({}),
        ocr_job_started_at: None,
        parent_id: file.parent_file_id,
        enable_auto_sync: Some(true),
        presigned_url: None,
        parsed_text_url: None,
        additional_presigned_urls: None,
        skip_embedding_generation: false,
        source_created_at: file.created_at.clone(),
        generate_sparse_vectors: Some(false),
        request_id: None,
        upload_id: None,
        sync_properties: json!({}),
        messages_metadata: json!({}),
        file_contents_deleted: false,
        supports_cold_storage: false,
        hot_storage_time_to_live: None,
        embedding_storage_status: "HOT_STORAGE",
        created_at: file.created_at.unwrap_or_else(|| file.updated_at.clone()),
        updated_at: file.updated_at,
    }
}

/// POST /user_files_v2
pub async fn user_files_v2(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<UserFilesRequest>,
) -> ApiResult<SizedJson<UserFilesResponse>> {
    let (limit, offset) = page(&request.pagination)?;
    let query = file_query(&request.filters)?;
    let (Some(user), Some(mut query)) = (end_user(&app, &caller).await?, query) else {
        return Ok(SizedJson(
            UserFilesResponse {
                results: Vec::new(),
                count: 0,
            },
            64,
        ));
    };
    query.order_by = match request.order_by {
        FileOrderBy::CreatedAt => store::FileOrder::CreatedAt,
        FileOrderBy::UpdatedAt | FileOrderBy::LastSync => store::FileOrder::UpdatedAt,
        FileOrderBy::Name => store::FileOrder::Name,
        FileOrderBy::FileSize => store::FileOrder::FileSize,
        FileOrderBy::Id => store::FileOrder::Id,
    };
    query.descending = request.order_dir == OrderDir::Desc;
    query.limit = limit;
    query.offset = offset;
    query.pending_after = Some(app.index.applied_position());
    let (files, count) = app
        .store
        .api_files(&caller.organisation.id, &user.id, &query)
        .await?;
    let results: Vec<UserFile> = files
        .into_iter()
        .map(|file| {
            let status = visible_status(&file);
            user_file(file, status, &caller.organisation, &user)
        })
        .collect();
    // A file is about 1.3 KB of JSON.
    let size = 64 + results.len() * 1536;
    Ok(SizedJson(UserFilesResponse { results, count }, size))
}

/// POST /resync_file: the file is fetched again by a sync of its data source.
pub async fn resync_file(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<ResyncFileRequest>,
) -> ApiResult<Json<UserFile>> {
    let user = end_user(&app, &caller)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    let connection = app
        .store
        .file_connection(&caller.organisation.id, &user.id, request.file_id)
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    if connection.revoked {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "access_revoked",
            "this file's data source was revoked",
        ));
    }
    let chunking = new_chunking(&connection, request.chunk_size, request.chunk_overlap)?;
    app.store
        .resync_file(&connection.id, request.file_id, chunking)
        .await?;
    app.jobs_ready.notify_one();
    let (user, file) = caller_file(&app, &caller, request.file_id).await?;
    let status = file.status.clone();
    Ok(Json(user_file(file, status, &caller.organisation, &user)))
}

/// POST /delete_files_v2: removes the matching files and their chunks
/// (gone from search as soon as the index applies the change).
pub async fn delete_files_v2(
    State(app): State<AppState>,
    caller: CustomerCaller,
    Body(request): Body<DeleteFilesRequest>,
) -> ApiResult<Json<SuccessResponse>> {
    delete_matching(&app, &caller, &request.filters, request.send_webhook).await?;
    Ok(Json(SuccessResponse { success: true }))
}

/// Deletes the caller's files that `filters` match, with their events
/// when asked, in one transaction; answers once search reflects it.
pub(crate) async fn delete_matching(
    app: &App,
    caller: &CustomerCaller,
    filters: &FileFilters,
    send_webhook: bool,
) -> ApiResult<()> {
    let query = file_query(filters)?;
    let f = filters;
    // Filters that narrow nothing (an empty name, no tags, the source,
    // which is always CONFLUENCE here) are no filter.
    let unfiltered = f.ids.is_none()
        && f.external_file_ids.is_none()
        && f.sync_statuses.is_none()
        && f.parent_file_ids.is_none()
        && f.organization_user_data_source_id.is_none()
        && f.name.as_deref().is_none_or(str::is_empty)
        && f.tags.as_ref().is_none_or(BTreeMap::is_empty);
    if unfiltered {
        return Err(ApiError::field(
            &["filters"],
            "give at least one filter (ids, external_file_ids, ...)",
        ));
    }
    let (Some(user), Some(mut query)) = (end_user(app, caller).await?, query) else {
        return Ok(());
    };
    // The customer's connections, by data source id: files are deleted
    // per connection.
    let (connections, _) = app
        .store
        .data_sources(
            &caller.organisation.id,
            &user.id,
            &[],
            None,
            true,
            false,
            10_000,
            0,
        )
        .await?;
    let connection_of: BTreeMap<i64, String> = connections
        .into_iter()
        .map(|c| (c.data_source_id, c.id))
        .collect();
    let mut doomed: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    query.limit = 10_000;
    query.order_by = store::FileOrder::Id;
    loop {
        let (files, _) = app
            .store
            .api_files(&caller.organisation.id, &user.id, &query)
            .await?;
        let n = files.len() as i64;
        for file in files {
            if let Some(connection_id) = connection_of.get(&file.data_source_id) {
                doomed
                    .entry(connection_id.clone())
                    .or_default()
                    .push((file.id, file.data_source_id));
            }
        }
        if n < query.limit {
            break;
        }
        query.offset += n;
    }
    let mut bodies = Vec::new();
    let mut by_connection = Vec::new();
    for (connection_id, files) in &doomed {
        by_connection.push((
            connection_id.clone(),
            files.iter().map(|(id, _)| *id).collect::<Vec<i64>>(),
        ));
        if send_webhook {
            bodies.extend(files.iter().map(|(id, source)| {
                events::body(
                    events::EventKind::FileDeleted,
                    &user.customer_id,
                    "FILE",
                    json!(id),
                    &[("data_source_id", source.to_string())],
                )
            }));
        }
    }
    // The files and their events, in one transaction.
    app.store
        .delete_files_of(&caller.organisation.id, &by_connection, &bodies)
        .await?;
    app.outbox_ready.notify_one();
    searchable_now(app).await
}

/// Waits until the index has applied every change committed so far, so
/// that a delete answered is a delete done in search too. Should the index
/// fail, the store keeps the change and the index applies it when it can;
/// the caller hears that it is not done yet.
pub(crate) async fn searchable_now(app: &App) -> ApiResult<()> {
    app.follower.flush().await.map_err(|error| {
        tracing::error!(%error, "the index could not apply a change");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "index_behind",
            "the change is stored, but search does not reflect it yet; try again shortly",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page of files is written by sonic-rs (`SizedJson`), every other
    /// answer by serde_json: the same JSON, whatever a page's text holds.
    #[tokio::test]
    async fn a_page_of_files_is_the_json_serde_json_writes() {
        let tricky = "quote \" backslash \\ slash / tab \t newline \n nul \u{0} \
                      bell \u{7} del \u{7f} é ☃ 😀 </script> \u{2028}";
        let file = store::ApiFile {
            id: 7,
            data_source_id: 3,
            kind: "attachment".into(),
            external_id: format!("att{tricky}"),
            url: Some(format!("https://x.test/{tricky}")),
            status: "READY".into(),
            error: Some(tricky.into()),
            title: format!("{tricky}.pdf"),
            parent_file_id: Some(-1),
            tags: json!({"k": tricky, "n": [1, -2, 3.5, 1e300, null, true]}),
            version: i64::MAX,
            media_type: Some("application/pdf".into()),
            size_bytes: Some(i64::MIN),
            created_at: None,
            updated_at: "2024-01-02T03:04:05.678Z".into(),
            chunk_size: 1500,
            chunk_overlap: 20,
            characters: 0,
            chunks: 12,
            pending_index: true,
        };
        let organisation = store::Organisation {
            id: "org".into(),
            number: 1,
            name: tricky.into(),
            created_at: "2024-01-01T00:00:00.000Z".into(),
            remove_branding: false,
        };
        let user = store::EndUser {
            id: "u".into(),
            number: 2,
            organisation_id: "org".into(),
            customer_id: tricky.into(),
            created_at: "2024-01-01T00:00:00.000Z".into(),
            updated_at: "2024-01-01T00:00:00.000Z".into(),
            auto_sync_sources: None,
            auto_sync_interval: None,
        };
        let page = || UserFilesResponse {
            results: vec![user_file(
                file.clone(),
                visible_status(&file),
                &organisation,
                &user,
            )],
            count: 1,
        };
        let expected = serde_json::to_value(page()).unwrap();
        let response = axum::response::IntoResponse::into_response(SizedJson(page(), 10));
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let written: Value = serde_json::from_slice(&body).expect("valid JSON");
        assert_eq!(written, expected);
        assert_eq!(
            written["results"][0]["name"],
            json!(format!("{tricky}.pdf"))
        );
        assert_eq!(written["results"][0]["sync_status"], json!("SYNCING"));
    }
}
