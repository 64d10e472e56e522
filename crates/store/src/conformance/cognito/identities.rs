//! Identity pools, identities and their logins, developer identities, temporary credentials
//! and OpenID tokens.

use super::*;

pub(super) async fn identity_pools_round_trip(store: Arc<dyn Store>) {
    let e = default_engine(store.clone());
    let mut full = spec("Full pool");
    full.allow_classic_flow = Some(true);
    full.open_id_connect_provider_arns = vec!["arn:aws:iam::123456789012:oidc-provider/issuer.example".into()];
    full.saml_provider_arns = vec!["arn:aws:iam::123456789012:saml-provider/corp".into()];
    full.cognito_identity_providers = vec![ferrosync_core::cognito::CognitoIdentityProvider {
        provider_name: "cognito-idp.us-east-1.amazonaws.com/us-east-1_abc".into(),
        client_id: "client".into(),
        server_side_token_check: true,
    }];
    full.tags = [("team".to_owned(), "sync".to_owned())].into();
    let created = e.create_identity_pool(&Principal::Root, full.clone()).await.expect("created");
    assert!(created.id.starts_with("us-east-1:"), "{}", created.id);
    assert_eq!(created.spec, full);
    let described = e.identity_pool(&Principal::Root, &created.id).await.expect("described");
    assert_eq!(described.spec, full);
    let service = store.service(&ObjectRef::UniqueName(created.id.clone())).await.expect("reads").expect("exists");
    assert_eq!(service.sid, created.service_sid, "the pool owns a service named by its id");

    let mut ids = vec![created.id.clone()];
    for n in 0..2 {
        ids.push(e.create_identity_pool(&Principal::Root, spec(&format!("p{n}"))).await.expect("created").id);
    }
    ids.sort();
    let first = e.identity_pools(&Principal::Root, 2, None).await.expect("page 1");
    let token = first.next.expect("more pools").encode();
    let second = e.identity_pools(&Principal::Root, 2, Some(&token)).await.expect("page 2");
    assert!(second.next.is_none());
    let listed: Vec<String> = first.items.iter().chain(&second.items).map(|p| p.id.clone()).collect();
    assert_eq!(listed, ids);
    assert!(matches!(e.identity_pools(&Principal::Root, 61, None).await, Err(CoreError::InvalidField { .. })));

    // The developer provider name stays once set: left out, it is kept; changed, refused.
    let mut update = full.clone();
    update.allow_unauthenticated_identities = false;
    update.developer_provider_name = None;
    let updated = e.update_identity_pool(&Principal::Root, &created.id, update).await.expect("updated");
    assert!(!updated.spec.allow_unauthenticated_identities);
    assert_eq!(updated.spec.developer_provider_name.as_deref(), Some("login.example.app"));
    let mut renamed = full.clone();
    renamed.developer_provider_name = Some("other.provider".into());
    assert!(matches!(
        e.update_identity_pool(&Principal::Root, &created.id, renamed).await,
        Err(CoreError::InvalidParameter(_))
    ));
    let bad = IdentityPoolSpec { name: "bad/name".into(), ..Default::default() };
    assert!(e.create_identity_pool(&Principal::Root, bad).await.is_err());

    e.delete_identity_pool(&Principal::Root, &created.id).await.expect("deleted");
    assert!(matches!(
        e.identity_pool(&Principal::Root, &created.id).await,
        Err(CoreError::NotFound { what: NotFoundKind::IdentityPool, .. })
    ));
    assert!(store.service(&ObjectRef::Sid(created.service_sid)).await.expect("reads").is_none());
}

// ----- identities ------------------------------------------------------------------------------

pub(super) async fn unauthenticated_identities_follow_the_pool(store: Arc<dyn Store>) {
    let e = default_engine(store);
    let mut closed = spec("closed");
    closed.allow_unauthenticated_identities = false;
    let pool = e.create_identity_pool(&Principal::Root, closed.clone()).await.expect("pool");
    let refused = e.get_id(&pool.id, &BTreeMap::new()).await;
    assert!(
        matches!(&refused, Err(CoreError::NotAuthorized(m)) if m == "Unauthenticated access is not supported for this identity pool."),
        "{refused:?}"
    );
    let unsupported = e.get_id(&pool.id, &logins(&[("www.amazon.com", "u")])).await;
    assert!(matches!(unsupported, Err(CoreError::NotAuthorized(_))), "{unsupported:?}");
    let developer = e.get_id(&pool.id, &logins(&[("login.example.app", "u")])).await;
    assert!(matches!(developer, Err(CoreError::NotAuthorized(_))), "developer logins need developer credentials");
    let alice = e.get_id(&pool.id, &logins(&[("graph.facebook.com", "alice")])).await.expect("authenticated");
    let again = e.get_id(&pool.id, &logins(&[("graph.facebook.com", "alice")])).await.expect("authenticated");
    assert_eq!(alice, again, "the same login always maps to the same identity");

    let open = pool_with_unauth(&e).await;
    let a = new_identity(&e, &open).await;
    let b = new_identity(&e, &open).await;
    assert_ne!(a, b, "every unauthenticated GetId is a new identity");
    e.credentials_for_identity(&a, &BTreeMap::new()).await.expect("unauthenticated credentials");
    let mut now_closed = open.spec.clone();
    now_closed.allow_unauthenticated_identities = false;
    e.update_identity_pool(&Principal::Root, &open.id, now_closed).await.expect("updated");
    assert!(matches!(e.credentials_for_identity(&a, &BTreeMap::new()).await, Err(CoreError::NotAuthorized(_))));
    assert!(matches!(
        e.credentials_for_identity("us-east-1:00000000-0000-0000-0000-000000000000", &BTreeMap::new()).await,
        Err(CoreError::NotFound { what: NotFoundKind::CognitoIdentity, .. })
    ));
}

pub(super) async fn pool_with_unauth(e: &Engine) -> IdentityPool {
    e.create_identity_pool(&Principal::Root, spec("open")).await.expect("pool")
}

pub(super) async fn logins_link_and_merge_identities(store: Arc<dyn Store>) {
    let e = default_engine(store);
    let pool = pool(&e).await;
    let guest = new_identity(&e, &pool).await;
    push(&e, &Principal::Root, &pool, &guest, "settings", vec![replace("theme", "dark", 0)]).await.expect("synced");
    push(&e, &Principal::Root, &pool, &guest, "scores", vec![replace("best", "10", 0)]).await.expect("synced");
    let alice = e.get_id(&pool.id, &logins(&[("graph.facebook.com", "alice")])).await.expect("alice");
    push(&e, &Principal::Root, &pool, &alice, "settings", vec![replace("theme", "light", 0)]).await.expect("synced");

    // The guest logs in as alice, whose login has an identity already: the guest merges into it.
    let creds = e.credentials_for_identity(&guest, &logins(&[("graph.facebook.com", "alice")])).await.expect("merged");
    assert_eq!(creds.identity_id, alice, "the identity holding the login survives");
    let absorbed = e.cognito_identity(&Principal::Root, &guest).await.expect("still described");
    assert!(absorbed.disabled);
    assert_eq!(absorbed.merged_into.as_deref(), Some(alice.as_str()));
    assert!(matches!(e.credentials_for_identity(&guest, &BTreeMap::new()).await, Err(CoreError::NotAuthorized(_))));
    let names: Vec<String> = e
        .datasets(&Principal::Root, &pool.id, &alice, None, None)
        .await
        .expect("datasets")
        .items
        .into_iter()
        .map(|d| d.name)
        .collect();
    assert_eq!(names, vec![format!("scores.{guest}"), "settings".to_owned(), format!("settings.{guest}")]);
    let root = e.list_records(&Principal::Root, &pool.id, &alice, "settings", since(0)).await.expect("listed");
    assert_eq!(root.merged_dataset_names, vec![format!("settings.{guest}")]);
    let merged = e
        .list_records(&Principal::Root, &pool.id, &alice, &format!("settings.{guest}"), since(0))
        .await
        .expect("listed");
    assert_eq!(keys_and_counts(&merged.records), vec![("theme".into(), Some("dark".into()), 1)]);
    // Once the client has folded the merged dataset in and deleted it, the merge is no longer reported.
    e.delete_dataset(&Principal::Root, &pool.id, &alice, &format!("settings.{guest}")).await.expect("deleted");
    let root = e.list_records(&Principal::Root, &pool.id, &alice, "settings", since(0)).await.expect("listed");
    assert!(root.merged_dataset_names.is_empty());

    // An authenticated identity must present one of its logins.
    let refused = e.credentials_for_identity(&alice, &BTreeMap::new()).await;
    assert!(matches!(&refused, Err(CoreError::NotAuthorized(m)) if m.starts_with("Logins don't match")), "{refused:?}");
    let both = logins(&[("graph.facebook.com", "alice"), ("accounts.google.com", "alice@g")]);
    assert_eq!(e.credentials_for_identity(&alice, &both).await.expect("linked").identity_id, alice);
    assert_eq!(e.get_id(&pool.id, &logins(&[("accounts.google.com", "alice@g")])).await.expect("id"), alice);

    // Two users of one provider cannot share an identity.
    let bob = e.get_id(&pool.id, &logins(&[("graph.facebook.com", "bob")])).await.expect("bob");
    let conflict = e
        .credentials_for_identity(&bob, &logins(&[("graph.facebook.com", "bob"), ("accounts.google.com", "alice@g")]))
        .await;
    assert!(matches!(conflict, Err(CoreError::ResourceConflict(_))), "{conflict:?}");
    let described = e.cognito_identity(&Principal::Root, &bob).await.expect("bob");
    assert!(!described.disabled, "a refused merge changes nothing");
}

pub(super) async fn developer_identities_link_look_up_merge_and_unlink(store: Arc<dyn Store>) {
    let e = default_engine(store);
    let pool = pool(&e).await;
    let dev = "login.example.app";
    let root = Principal::Root;
    let first = e.open_id_token_for_developer_identity(&root, &pool.id, None, &logins(&[(dev, "u1")]), None).await;
    let i1 = first.expect("created").identity_id;
    let again = e.open_id_token_for_developer_identity(&root, &pool.id, None, &logins(&[(dev, "u1")]), Some(60)).await;
    assert_eq!(again.expect("found").identity_id, i1);
    let i2 = e
        .open_id_token_for_developer_identity(&root, &pool.id, None, &logins(&[(dev, "u2")]), None)
        .await
        .expect("created")
        .identity_id;
    assert_ne!(i1, i2);
    let taken = e.open_id_token_for_developer_identity(&root, &pool.id, Some(&i2), &logins(&[(dev, "u1")]), None).await;
    assert!(matches!(taken, Err(CoreError::DeveloperUserAlreadyRegistered(_))), "{taken:?}");
    let linked =
        e.open_id_token_for_developer_identity(&root, &pool.id, Some(&i1), &logins(&[(dev, "u1b")]), None).await;
    assert_eq!(linked.expect("linked").identity_id, i1, "several developer users may share an identity");
    let too_long =
        e.open_id_token_for_developer_identity(&root, &pool.id, None, &logins(&[(dev, "u1")]), Some(86_401)).await;
    assert!(matches!(too_long, Err(CoreError::InvalidField { .. })));
    let missing = e
        .open_id_token_for_developer_identity(&root, &pool.id, None, &logins(&[("graph.facebook.com", "x")]), None)
        .await;
    assert!(matches!(missing, Err(CoreError::InvalidParameter(_))));
    let as_identity = identity_principal(&e, &new_identity(&e, &pool).await, &BTreeMap::new()).await;
    let refused =
        e.open_id_token_for_developer_identity(&as_identity, &pool.id, None, &logins(&[(dev, "u9")]), None).await;
    assert!(matches!(refused, Err(CoreError::NotAuthorized(_))), "developer credentials only");

    // Looked up both ways, paged.
    let by_user = e.lookup_developer_identity(&root, &pool.id, None, Some("u1b"), None, None).await.expect("found");
    assert_eq!(by_user.identity_id, i1);
    assert_eq!(by_user.developer_user_identifiers, vec!["u1".to_owned(), "u1b".to_owned()]);
    let page1 = e.lookup_developer_identity(&root, &pool.id, Some(&i1), None, Some(1), None).await.expect("found");
    assert_eq!(page1.developer_user_identifiers, vec!["u1".to_owned()]);
    let next = page1.next_token.expect("a second page");
    let page2 =
        e.lookup_developer_identity(&root, &pool.id, Some(&i1), None, Some(1), Some(&next)).await.expect("found");
    assert_eq!((page2.developer_user_identifiers, page2.next_token), (vec!["u1b".to_owned()], None));
    let mismatch = e.lookup_developer_identity(&root, &pool.id, Some(&i2), Some("u1"), None, None).await;
    assert!(matches!(mismatch, Err(CoreError::ResourceConflict(_))));
    let unknown = e.lookup_developer_identity(&root, &pool.id, None, Some("nobody"), None, None).await;
    assert!(matches!(unknown, Err(CoreError::NotFound { what: NotFoundKind::DeveloperUser, .. })));

    // The enhanced flow: the developer's OpenID token proves the identity to GetCredentialsForIdentity.
    let token = e
        .open_id_token_for_developer_identity(&root, &pool.id, Some(&i2), &logins(&[(dev, "u2")]), None)
        .await
        .expect("token")
        .token;
    assert!(matches!(e.credentials_for_identity(&i2, &BTreeMap::new()).await, Err(CoreError::NotAuthorized(_))));
    let creds = e.credentials_for_identity(&i2, &logins(&[(COGNITO_PROVIDER, &token)])).await.expect("credentials");
    assert_eq!(creds.identity_id, i2);
    let wrong = e.credentials_for_identity(&i1, &logins(&[(COGNITO_PROVIDER, &token)])).await;
    assert!(matches!(wrong, Err(CoreError::NotAuthorized(_))), "a token proves only its own identity");
    let forged = e.credentials_for_identity(&i2, &logins(&[(COGNITO_PROVIDER, "e30.e30.c2ln")])).await;
    assert!(matches!(forged, Err(CoreError::NotAuthorized(_))));

    // u2's identity merges into u1's, datasets and all.
    let developer_principal = Principal::Root;
    push(&e, &developer_principal, &pool, &i2, "game", vec![replace("level", "3", 0)]).await.expect("synced");
    let wrong_provider = e.merge_developer_identities(&root, &pool.id, "graph.facebook.com", "u2", "u1").await;
    assert!(matches!(wrong_provider, Err(CoreError::InvalidParameter(_))));
    let survivor = e.merge_developer_identities(&root, &pool.id, dev, "u2", "u1").await.expect("merged");
    assert_eq!(survivor, i1);
    let found = e.lookup_developer_identity(&root, &pool.id, None, Some("u2"), None, None).await.expect("found");
    assert_eq!(found.identity_id, i1);
    let game = e.list_records(&root, &pool.id, &i1, "game", since(0)).await.expect("listed");
    assert_eq!(game.merged_dataset_names, vec![format!("game.{i2}")]);
    assert_eq!(e.merge_developer_identities(&root, &pool.id, dev, "u1", "u2").await.expect("same"), i1);

    // Unlinked of every developer user, the identity is disabled.
    let not_his = e.unlink_developer_identity(&root, &pool.id, &i2, dev, "u1").await;
    assert!(matches!(not_his, Err(CoreError::NotAuthorized(_) | CoreError::ResourceConflict(_))), "{not_his:?}");
    for user in ["u1", "u1b"] {
        e.unlink_developer_identity(&root, &pool.id, &i1, dev, user).await.expect("unlinked");
        assert!(!e.cognito_identity(&root, &i1).await.expect("described").disabled);
    }
    e.unlink_developer_identity(&root, &pool.id, &i1, dev, "u2").await.expect("unlinked");
    assert!(e.cognito_identity(&root, &i1).await.expect("described").disabled);
    let fresh = e.open_id_token_for_developer_identity(&root, &pool.id, None, &logins(&[(dev, "u1")]), None).await;
    assert_ne!(fresh.expect("a new identity").identity_id, i1, "an unlinked user is new when seen again");
}

pub(super) async fn identities_are_listed_described_and_deleted(store: Arc<dyn Store>) {
    let e = default_engine(store.clone());
    let pool = pool(&e).await;
    let root = Principal::Root;
    let alice = e.get_id(&pool.id, &logins(&[("graph.facebook.com", "alice")])).await.expect("alice");
    let described = e.cognito_identity(&root, &alice).await.expect("described");
    assert_eq!(described.logins, vec![Login { provider: "graph.facebook.com".into(), user: "alice".into() }]);
    let mut ids = vec![alice.clone()];
    for _ in 0..3 {
        ids.push(new_identity(&e, &pool).await);
    }
    ids.sort();
    let mut listed = Vec::new();
    let mut token = None;
    loop {
        let page = e.cognito_identities(&root, &pool.id, 2, token.as_deref(), false).await.expect("page");
        listed.extend(page.items.into_iter().map(|i| i.id));
        match page.next {
            Some(t) => token = Some(t.encode()),
            None => break,
        }
    }
    assert_eq!(listed, ids);

    // A merged identity is disabled: HideDisabled leaves it out.
    let guest = ids.iter().find(|i| **i != alice).cloned().expect("a guest");
    e.credentials_for_identity(&guest, &logins(&[("graph.facebook.com", "alice")])).await.expect("merged");
    let shown = e.cognito_identities(&root, &pool.id, 60, None, true).await.expect("page");
    assert_eq!(shown.items.len(), ids.len() - 1);
    assert!(shown.items.iter().all(|i| i.id != guest));

    push(&e, &root, &pool, &alice, "doomed", vec![replace("k", "v", 0)]).await.expect("synced");
    let map_name = dataset_map_name(&alice, "doomed");
    let map = store.object(&pool.service_sid, ObjectKind::Map, &ObjectRef::UniqueName(map_name.clone())).await;
    assert!(map.expect("reads").is_some());
    let unknown = "us-east-1:00000000-0000-0000-0000-000000000000".to_owned();
    let unprocessed = e.delete_identities(&root, &[alice.clone(), unknown]).await.expect("deleted");
    assert!(unprocessed.is_empty());
    assert!(matches!(e.cognito_identity(&root, &alice).await, Err(CoreError::NotFound { .. })));
    let map = store.object(&pool.service_sid, ObjectKind::Map, &ObjectRef::UniqueName(map_name)).await;
    assert!(map.expect("reads").is_none(), "its datasets go with it");
    assert!(matches!(e.delete_identities(&root, &[]).await, Err(CoreError::InvalidField { .. })));
}

// ----- credentials and tokens ------------------------------------------------------------------

pub(super) async fn temporary_credentials_round_trip(store: Arc<dyn Store>) {
    let master = SecretBox::generate_key_hex();
    let root_creds = RootCredentials::generate();
    let make = |limits: Limits| {
        let secrets = SecretBox::from_hex(&master).expect("master key");
        Engine::new(store.clone(), limits, root_creds.clone(), secrets)
    };
    let e = make(Limits::default());
    let pool = pool(&e).await;
    let identity = new_identity(&e, &pool).await;
    let creds = e.credentials_for_identity(&identity, &BTreeMap::new()).await.expect("credentials");
    assert_eq!(creds.access_key_id.len(), 20);
    assert!(creds.access_key_id.starts_with("ASIA"));
    let in_an_hour = ferrosync_core::Timestamp::now().millis() + 3_600_000;
    assert!((creds.expiration.millis() - in_an_hour).abs() < 10_000, "valid for an hour");

    // Any node with the same master key resolves them: nothing was stored.
    let other_node = make(Limits::default());
    let resolved = other_node.aws_secret(&creds.access_key_id, Some(&creds.session_token)).await.expect("resolves");
    assert_eq!(resolved.secret, creds.secret_key);
    match &resolved.principal {
        Principal::CognitoIdentity { identity_id, pool_id, service_sid, .. } => {
            assert_eq!((identity_id, pool_id, service_sid), (&identity, &pool.id, &pool.service_sid));
        }
        other => panic!("unexpected principal {other:?}"),
    }
    assert!(matches!(
        e.aws_secret("ASIAAAAAAAAAAAAAAAAA", Some(&creds.session_token)).await,
        Err(CoreError::InvalidCredentials)
    ));
    let mut tampered = creds.session_token.clone();
    tampered.insert(10, 'x');
    assert!(matches!(e.aws_secret(&creds.access_key_id, Some(&tampered)).await, Err(CoreError::InvalidCredentials)));
    let foreign = engine(store.clone(), Limits::default());
    assert!(foreign.aws_secret(&creds.access_key_id, Some(&creds.session_token)).await.is_err(), "another master key");

    let mut short = Limits::default();
    short.cognito.credentials_ttl_secs = 0;
    let expired = make(short).credentials_for_identity(&identity, &BTreeMap::new()).await.expect("credentials");
    assert!(matches!(
        e.aws_secret(&expired.access_key_id, Some(&expired.session_token)).await,
        Err(CoreError::AccessTokenExpired)
    ));

    // Developer credentials: the root account and API keys.
    let account = e.aws_secret(root_creds.account_sid.as_str(), None).await.expect("root");
    assert_eq!((account.secret.as_str(), &account.principal), (root_creds.auth_token.as_str(), &Principal::Root));
    let key = e.create_api_key(&Principal::Root, None).await.expect("key");
    let api = e.aws_secret(key.sid.as_str(), None).await.expect("api key");
    assert_eq!((api.secret, api.principal), (key.secret, Principal::ApiKey(key.sid)));
    assert!(matches!(e.aws_secret("AKIDEXAMPLE", None).await, Err(CoreError::InvalidCredentials)));

    // Deleting the identity ends its credentials.
    e.delete_identities(&Principal::Root, std::slice::from_ref(&identity)).await.expect("deleted");
    assert!(matches!(
        e.aws_secret(&creds.access_key_id, Some(&creds.session_token)).await,
        Err(CoreError::InvalidCredentials)
    ));
}

pub(super) async fn openid_tokens_verify_with_the_published_keys(store: Arc<dyn Store>) {
    let master = SecretBox::generate_key_hex();
    let make = || {
        Engine::new(
            store.clone(),
            Limits::default(),
            RootCredentials::generate(),
            SecretBox::from_hex(&master).expect("master key"),
        )
    };
    let (a, b) = (make(), make());
    let pool = pool(&a).await;
    let identity = a.get_id(&pool.id, &logins(&[("graph.facebook.com", "carol")])).await.expect("carol");
    let token = a.open_id_token(&identity, &logins(&[("graph.facebook.com", "carol")])).await.expect("token");
    assert_eq!(token.identity_id, identity);
    let jwks = b.openid_jwks().await.expect("jwks");
    assert_eq!(jwks, a.openid_jwks().await.expect("jwks"), "one key per deployment, shared by every node");
    let jwk = &jwks.keys[0];
    assert_eq!((jwk.kty.as_str(), jwk.alg.as_str(), jwk.key_use.as_str()), ("RSA", "RS256", "sig"));
    let header = jsonwebtoken::decode_header(&token.token).expect("header");
    assert_eq!(header.kid.as_deref(), Some(jwk.kid.as_str()));
    let key = jsonwebtoken::DecodingKey::from_rsa_components(&jwk.n, &jwk.e).expect("key");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[pool.id.as_str()]);
    validation.set_issuer(&[Limits::default().cognito.openid_issuer.as_str()]);
    let claims = jsonwebtoken::decode::<OpenIdClaims>(&token.token, &key, &validation).expect("verifies").claims;
    assert_eq!(claims.sub, identity);
    assert_eq!(claims.amr, vec!["authenticated".to_owned(), "graph.facebook.com".to_owned()]);
    assert_eq!(claims.exp - claims.iat, 600, "GetOpenIdToken tokens last 10 minutes");
    // Tokens from one node prove the identity to another.
    let creds = b.credentials_for_identity(&identity, &logins(&[(COGNITO_PROVIDER, &token.token)])).await;
    assert_eq!(creds.expect("credentials").identity_id, identity);
    let dev = a
        .open_id_token_for_developer_identity(
            &Principal::Root,
            &pool.id,
            None,
            &logins(&[("login.example.app", "dave")]),
            Some(86_400),
        )
        .await
        .expect("token");
    let claims = jsonwebtoken::decode::<OpenIdClaims>(&dev.token, &key, &validation).expect("verifies").claims;
    assert_eq!(claims.exp - claims.iat, 86_400, "TokenDuration");
}

// ----- records ---------------------------------------------------------------------------------
