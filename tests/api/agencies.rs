use lephi::domain::Role;
use serde_json::json;

use crate::helpers::{Backend, spawn_app};
use crate::on_both_backends;

on_both_backends!(
    creates_lists_and_reads_agencies,
    refuses_bad_agencies_and_changes_nothing,
    scoped_keys_see_their_subtree,
    imports_an_agency_list_whole_or_not_at_all,
);

async fn creates_lists_and_reads_agencies(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let read = app.get("/v1/agencies/P.D1.C1", &app.admin_key).await;
    assert_eq!(read.status, 200);
    let agency = read.json();
    assert_eq!(agency["level"], "commune");
    assert_eq!(agency["parent_code"], "P.D1");
    assert!(agency.get("path").is_none());
    let list = app.get("/v1/agencies", &app.admin_key).await.json();
    let codes: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["P", "P.D1", "P.D1.C1", "P.D2", "Q"]);
    assert_eq!(
        app.get("/v1/agencies/NOPE", &app.admin_key).await.status,
        404
    );
}

async fn refuses_bad_agencies_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let finance = app.key(Role::Finance, "P").await;
    let before = (app.count("agencies").await, app.count("audit_log").await);
    let duplicate = app.create_agency("P", "province", None).await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(duplicate.code(), "agency_exists");
    let orphan = app.create_agency("X.D", "district", Some("X")).await;
    assert_eq!(orphan.status, 404);
    assert_eq!(orphan.code(), "agency_not_found");
    let upside_down = app
        .create_agency("P.D1.C1.D", "district", Some("P.D1.C1"))
        .await;
    assert_eq!(upside_down.status, 422);
    assert_eq!(upside_down.json()["details"]["field"], "level");
    let rootless = app.create_agency("R.D", "district", None).await;
    assert_eq!(rootless.status, 422);
    for body in [
        json!({ "code": "bad code", "name": "x", "level": "province" }),
        json!({ "code": "R", "name": "x", "level": "ward" }),
        json!({ "code": "R", "name": "", "level": "province" }),
        json!({ "code": "R", "name": "x", "level": "province", "extra": 1 }),
        json!({ "name": "x", "level": "province" }),
    ] {
        let response = app.post("/v1/agencies", &app.admin_key, &body).await;
        assert_eq!(response.status, 422, "{body}: {}", response.text);
        assert_eq!(response.code(), "validation_failed");
    }
    let forbidden = app
        .post(
            "/v1/agencies",
            &finance,
            &json!({ "code": "R", "name": "x", "level": "province" }),
        )
        .await;
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        before,
        (app.count("agencies").await, app.count("audit_log").await)
    );
}

async fn scoped_keys_see_their_subtree(backend: Backend) {
    let app = spawn_app(backend).await;
    app.seed_agencies().await;
    let district_admin = app.key(Role::Admin, "P.D1").await;
    let list = app.get("/v1/agencies", &district_admin).await.json();
    let codes: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["P.D1", "P.D1.C1"]);
    assert_eq!(app.get("/v1/agencies/P", &district_admin).await.status, 404);
    assert_eq!(
        app.get("/v1/agencies/P.D2", &district_admin).await.status,
        404
    );
    // A scoped admin creates inside its subtree only.
    for (body, status) in [
        (
            json!({ "code": "P.D1.C2", "name": "Xã", "level": "commune", "parent_code": "P.D1" }),
            201,
        ),
        (
            json!({ "code": "P.D2.C1", "name": "Xã", "level": "commune", "parent_code": "P.D2" }),
            404,
        ),
        (
            json!({ "code": "Z", "name": "Tỉnh", "level": "province" }),
            422,
        ),
    ] {
        let response = app.post("/v1/agencies", &district_admin, &body).await;
        assert_eq!(response.status, status, "{body}: {}", response.text);
    }
}

async fn imports_an_agency_list_whole_or_not_at_all(backend: Backend) {
    use lephi::domain::Scope;
    use lephi::domain::agency::parse_agency_list;
    use lephi::domain::audit::Actor;
    use lephi::store::StoreError;

    let app = spawn_app(backend).await;
    let import = |list: &str| {
        let rows = parse_agency_list(list.as_bytes()).unwrap();
        let store = app.store.clone();
        async move {
            store
                .import_agencies(&Actor::system("test"), &Scope::All, &rows)
                .await
        }
    };
    let counts = |s: lephi::store::AgencyImportSummary| (s.created, s.renamed, s.unchanged);
    // Children before parents: the import orders them.
    let list = "code,name,level,parent_code\nH.1.1,Xã Một,commune,H.1\nH.1,Huyện Một,district,H\nH,Tỉnh,province,\n";
    assert_eq!(counts(import(list).await.unwrap()), (3, 0, 0));
    assert_eq!(counts(import(list).await.unwrap()), (0, 0, 3));
    let renamed = "code,name,level,parent_code\nH,Tỉnh Mới,province,\n";
    assert_eq!(counts(import(renamed).await.unwrap()), (0, 1, 0));
    let before = (app.count("agencies").await, app.count("audit_log").await);
    for (bad, line) in [
        (
            "code,name,level,parent_code\nK,Tỉnh K,province,\nK.1,Huyện,district,MISSING\n",
            3,
        ),
        (
            "code,name,level,parent_code\nK,Tỉnh K,province,\nH.1,Huyện Một,district,K\n",
            3,
        ),
        (
            "code,name,level,parent_code\nK,Tỉnh K,province,\nK,Tỉnh K,province,\n",
            3,
        ),
        (
            "code,name,level,parent_code\nA.1,x,district,B.1\nB.1,y,district,A.1\n",
            2,
        ),
    ] {
        match import(bad).await {
            Err(StoreError::ImportRefused { line: at, .. }) => assert_eq!(at, line, "{bad}"),
            other => panic!("expected a refusal for {bad}, got {other:?}"),
        }
    }
    assert_eq!(
        before,
        (app.count("agencies").await, app.count("audit_log").await)
    );
}
