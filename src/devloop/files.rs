//! What the loop syncs without a build — kodata, files covered by
//! `gohot.yaml` `manual` rules, files matching `infer` globs — turned into
//! [`FileItem`]s for the reload layer, and its reports into events.

use std::path::PathBuf;

use super::events::{DevEvent, EventSink};
use super::{DevApp, InferSync};
use crate::reload::{FileItem, FilesReport, Reloader};
use crate::sync::dockerfile::SyncMap;

/// Copies (or deletes) files covered by `gohot.yaml` manual sync rules at
/// every destination `dests` gives (the rules that apply to this service).
pub(super) async fn sync_rule_files(
    reloader: &mut Reloader<'_>,
    app: &DevApp,
    dests: &(dyn Fn(&str) -> Vec<String> + Sync),
    files: &[String],
    events: &EventSink,
) {
    let root = app.module_root();
    let items =
        files.iter().map(|rel| FileItem { rel: rel.clone(), local: root.join(rel), dests: dests(rel) }).collect();
    let report = reloader.sync_files(items).await;
    report_rules(report, files, events);
}

/// `sync.infer`: copies changed files to the destinations the Dockerfile
/// gives them now, removes deleted ones from where they had been copied
/// (the map before), and returns the deleted files (they ask for a rebuild).
pub(super) async fn sync_infer(
    reloader: &mut Reloader<'_>,
    infer: &InferSync,
    map: &mut SyncMap,
    files: &[String],
    events: &EventSink,
) -> Vec<String> {
    let (changed, deleted): (Vec<String>, Vec<String>) =
        files.iter().cloned().partition(|f| infer.context.join(f).is_file());
    let now = match crate::sync::infer::sync_map_of_dir(&infer.dockerfile, &infer.context, &infer.build_args) {
        Ok(m) => m,
        Err(e) => {
            events(DevEvent::SyncFailed { errors: vec![format!("sync.infer: {e}")] });
            return deleted;
        }
    };
    let plan = crate::sync::infer::plan(map, &now, &changed, &deleted);
    *map = now;
    let items: Vec<FileItem> = plan
        .copy
        .into_iter()
        .chain(plan.delete)
        .map(|(rel, dests)| FileItem { local: infer.context.join(&rel), rel, dests })
        .collect();
    if !items.is_empty() {
        let names: Vec<String> = items.iter().map(|i| i.rel.clone()).collect();
        let report = reloader.sync_files(items).await;
        report_rules(report, &names, events);
    }
    deleted
}

/// Sends changed kodata files (no rebuild). A file removed locally stays in
/// the containers (the image has it) until the next image build.
pub(super) async fn sync_kodata(reloader: &mut Reloader<'_>, app: &DevApp, files: &[String], events: &EventSink) {
    use crate::builder::kodata::{resolve_kodata_file, KodataBounds, KodataEntry};
    let bounds = KodataBounds::from_env(&app.module_root());
    let mut items = Vec::new();
    let mut refused = Vec::new();
    for rel in files {
        // The resolved file (every link checked as a build checks it) is
        // what is read, now and when a restarted replica gets it again.
        let local: PathBuf = match resolve_kodata_file(&app.kodata(), rel, &bounds) {
            Ok(KodataEntry::File { path, .. }) => path,
            Ok(KodataEntry::NotAFile) => continue,
            Ok(KodataEntry::Gone) => {
                events(DevEvent::Warning {
                    message: format!(
                        "kodata/{rel} was removed locally; it stays in the container until the next image build"
                    ),
                });
                continue;
            }
            Err(e) => {
                refused.push(format!("kodata/{rel} not synced: {e}"));
                continue;
            }
        };
        items.push(FileItem { rel: rel.clone(), local, dests: vec![format!("{}/{rel}", crate::layout::KODATA_PATH)] });
    }
    if !refused.is_empty() {
        events(DevEvent::SyncFailed { errors: refused });
    }
    if items.is_empty() {
        return;
    }
    let names: Vec<String> = items.iter().map(|i| i.rel.clone()).collect();
    let report = reloader.sync_files(items).await;
    if report.no_replica {
        return events(DevEvent::Warning {
            message: format!("no running container: kodata {} not synced", names.join(", ")),
        });
    }
    if !report.errors.is_empty() {
        events(DevEvent::SyncFailed { errors: report.errors });
    }
    if !report.copied.is_empty() {
        events(DevEvent::KodataSynced { files: report.copied, bytes_sent: report.bytes_sent });
    }
}

fn report_rules(report: FilesReport, files: &[String], events: &EventSink) {
    if report.no_replica {
        return events(DevEvent::Warning { message: format!("no running container: {} not synced", files.join(", ")) });
    }
    if !report.errors.is_empty() {
        events(DevEvent::SyncFailed { errors: report.errors });
    }
    if !report.copied.is_empty() || !report.deleted.is_empty() {
        events(DevEvent::RulesSynced { copied: report.copied, deleted: report.deleted, bytes_sent: report.bytes_sent });
    }
}
