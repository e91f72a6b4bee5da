//! Policy test cases (feature `load`): `policies/tests/*.toml`, each a list of `[[case]]`
//! tables saying who asks for what and what the token must carry.
//!
//! ```toml
//! [[case]]
//! name    = "platform members push to their namespace"
//! account = "alice"                 # omit for an anonymous caller
//! groups  = ["platform"]            # groups from the user store (static [groups] apply too)
//! kind    = "password"              # default "password"; needs `account`
//! scope   = "repository:platform/api:pull,push"   # or a list; space-separated works too
//! limits  = ["repository:platform/**:pull"]      # optional credential limits
//! expect  = "repository:platform/api:pull"       # or a list, or [] for nothing
//! claims  = { region = "eu" }       # optional: the exact extra claims expected
//! ```
//!
//! A workload (OIDC ID token) case names its issuer and the token's claims instead of an
//! account; `account`, `groups` and `kind` must then be left out:
//!
//! ```toml
//! [[case]]
//! issuer   = "github"               # an [[issuer]] name of the policy
//! id_token = { sub = "repo:acme/app:ref:refs/heads/main", repository = "acme/app", ref = "refs/heads/main" }
//! scope    = "repository:acme/app/web:push"
//! expect   = "repository:acme/app/web:push"
//! ```

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Map, Value};
use toml::Spanned;

use crate::explain::Explanation;
use crate::limit::ScopeLimit;
use crate::load::{read_toml_files, table_to_json, LineIndex, LoadError};
use crate::policy::Policy;
use crate::scope::{parse_scopes, Scope};
use crate::source::Problem;
use crate::subject::{Caller, CredentialKind, Workload};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesToml {
    case: Vec<Spanned<CaseToml>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseToml {
    name: Option<String>,
    account: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
    kind: Option<Spanned<String>>,
    scope: Spanned<OneOrMany>,
    limits: Option<Vec<Spanned<String>>>,
    expect: Spanned<OneOrMany>,
    claims: Option<toml::Table>,
    issuer: Option<Spanned<String>>,
    id_token: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn values(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(one) => vec![one.as_str()],
            OneOrMany::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

/// One test case, validated.
#[derive(Debug, Clone)]
pub struct PolicyTestCase {
    /// `file:line` of its `[[case]]` header.
    pub location: String,
    /// Its `name`, or the requested scopes when it has none.
    pub name: String,
    account: Option<String>,
    groups: Vec<String>,
    kind: Option<CredentialKind>,
    scopes: Vec<Scope>,
    limits: Option<Vec<ScopeLimit>>,
    /// Expected access entries in scope grammar, canonical and sorted.
    expected: Vec<String>,
    claims: Option<Map<String, Value>>,
    /// A workload caller: issuer name and ID-token claims.
    workload: Option<(String, Map<String, Value>)>,
}

/// All cases of a tests directory.
#[derive(Debug, Clone)]
pub struct PolicyTests {
    cases: Vec<PolicyTestCase>,
}

impl PolicyTests {
    /// Loads every `DIR/*.toml` as test cases; problems are reported as `file:line: message`.
    pub fn load_dir(dir: &Path) -> Result<PolicyTests, LoadError> {
        let files = read_toml_files(dir)?;
        let mut cases = Vec::new();
        let mut problems = Vec::new();
        for (name, text) in &files {
            let file = dir.join(name).display().to_string();
            match parse_file(&file, text) {
                Ok(parsed) => cases.extend(parsed),
                Err(found) => problems.extend(found),
            }
        }
        if problems.is_empty() {
            Ok(PolicyTests { cases })
        } else {
            Err(LoadError { problems })
        }
    }

    /// Loads cases from one file's text; `file` names it in problems and locations.
    pub fn from_toml(file: &str, text: &str) -> Result<PolicyTests, LoadError> {
        parse_file(file, text)
            .map(|cases| PolicyTests { cases })
            .map_err(|problems| LoadError { problems })
    }

    /// The cases, in file order.
    pub fn cases(&self) -> &[PolicyTestCase] {
        &self.cases
    }

    /// Runs every case against `policy`.
    pub fn run(&self, policy: &Policy) -> TestReport {
        TestReport {
            results: self.cases.iter().map(|case| case.run(policy)).collect(),
        }
    }
}

impl PolicyTestCase {
    /// Evaluates the case and compares the grant with the expectation.
    pub fn run(&self, policy: &Policy) -> TestResult {
        let workload_account = self.workload.as_ref().map(|(issuer, claims)| {
            let sub = claims
                .get("sub")
                .and_then(Value::as_str)
                .unwrap_or_default();
            format!("{issuer}:{sub}")
        });
        let caller = Caller {
            account: workload_account.as_deref().or(self.account.as_deref()),
            groups: &self.groups,
            kind: self.kind,
            workload: self
                .workload
                .as_ref()
                .map(|(issuer, claims)| Workload { issuer, claims }),
        };
        let explanation = policy.explain(&caller, &self.scopes, self.limits.as_deref());
        let mut actual: Vec<String> = explanation
            .grant
            .access
            .iter()
            .map(ToString::to_string)
            .collect();
        actual.sort();
        let mut failures = Vec::new();
        if let Some((issuer, _)) = &self.workload {
            if !policy.issuers().iter().any(|i| i.name() == issuer) {
                failures.push(format!("issuer {issuer:?} is not declared in the policy"));
            }
        }
        if actual != self.expected {
            failures.push(format!(
                "expected {}, got {}",
                list_or_nothing(&self.expected),
                list_or_nothing(&actual)
            ));
        }
        if let Some(claims) = &self.claims {
            if *claims != explanation.grant.claims {
                failures.push(format!(
                    "expected claims {}, got {}",
                    Value::Object(claims.clone()),
                    Value::Object(explanation.grant.claims.clone())
                ));
            }
        }
        TestResult {
            location: self.location.clone(),
            name: self.name.clone(),
            failure: (!failures.is_empty()).then(|| failures.join("; ")),
            explanation,
        }
    }
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct TestResult {
    /// `file:line` of the case.
    pub location: String,
    /// The case's name.
    pub name: String,
    /// `None` when the case passed; what differed otherwise.
    pub failure: Option<String>,
    /// The explanation of the decision, to show on failure.
    pub explanation: Explanation,
}

impl TestResult {
    /// Whether the grant was exactly as expected.
    pub fn is_passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// The outcome of a whole run.
#[derive(Debug, Clone)]
pub struct TestReport {
    /// One result per case, in file order.
    pub results: Vec<TestResult>,
}

impl TestReport {
    /// Number of cases that passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.is_passed()).count()
    }

    /// Number of cases that failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// Whether there was at least one case and every case passed.
    pub fn is_success(&self) -> bool {
        !self.results.is_empty() && self.failed() == 0
    }
}

impl fmt::Display for TestResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            None => write!(f, "ok    {}  {}", self.location, self.name),
            Some(failure) => {
                writeln!(f, "FAIL  {}  {}", self.location, self.name)?;
                writeln!(f, "      {failure}")?;
                for line in self.explanation.to_string().lines() {
                    writeln!(f, "{}", format!("      | {line}").trim_end())?;
                }
                Ok(())
            }
        }
    }
}

fn list_or_nothing(items: &[String]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(" ")
    }
}

fn parse_file(file: &str, text: &str) -> Result<Vec<PolicyTestCase>, Vec<Problem>> {
    let lines = LineIndex::new(text);
    let problem = |offset: usize, message: String| Problem {
        file: file.to_owned(),
        line: lines.line(offset),
        message,
    };
    let parsed: CasesToml = toml::from_str(text).map_err(|e| {
        vec![Problem {
            file: file.to_owned(),
            line: e.span().map_or(0, |span| lines.line(span.start)),
            message: e.message().trim_end().to_owned(),
        }]
    })?;
    if parsed.case.is_empty() {
        return Err(vec![Problem {
            file: file.to_owned(),
            line: 0,
            message: "no [[case]] in this file".into(),
        }]);
    }
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for spanned in parsed.case {
        let start = spanned.span().start;
        let header = lines.header_line(start);
        let case = spanned.into_inner();
        let mut case_problems = Vec::new();
        let kind = match (&case.account, case.kind) {
            (None, Some(kind)) => {
                case_problems.push(problem(
                    kind.span().start,
                    "`kind` needs an `account` (anonymous callers have no credential)".into(),
                ));
                None
            }
            (None, None) => None,
            (Some(_), None) => Some(CredentialKind::Password),
            (Some(_), Some(kind)) => match kind.get_ref().parse() {
                Ok(parsed) => Some(parsed),
                Err(e) => {
                    case_problems.push(problem(kind.span().start, format!("{e}")));
                    None
                }
            },
        };
        let workload = match (case.issuer, case.id_token) {
            (None, None) => None,
            (None, Some(_)) => {
                case_problems.push(problem(start, "`id_token` needs an `issuer`".into()));
                None
            }
            (Some(issuer), id_token) => {
                if case.account.is_some() || kind.is_some() || !case.groups.is_empty() {
                    case_problems.push(problem(
                        issuer.span().start,
                        "a workload case (`issuer`) has no `account`, `groups` or `kind`".into(),
                    ));
                }
                match id_token
                    .map(table_to_json)
                    .unwrap_or(Ok(Value::Object(Map::new())))
                {
                    Ok(Value::Object(claims)) => Some((issuer.into_inner(), claims)),
                    Ok(_) => None,
                    Err(message) => {
                        case_problems.push(problem(start, message));
                        None
                    }
                }
            }
        };
        if case.account.is_none() && !case.groups.is_empty() {
            case_problems.push(problem(
                start,
                "`groups` needs an `account` (anonymous callers have no groups)".into(),
            ));
        }
        let scopes = parse_scopes(case.scope.get_ref().values()).unwrap_or_else(|e| {
            case_problems.push(problem(case.scope.span().start, e.to_string()));
            Vec::new()
        });
        if scopes.is_empty() && case_problems.is_empty() {
            case_problems.push(problem(case.scope.span().start, "`scope` is empty".into()));
        }
        let limits = case.limits.map(|limits| {
            limits
                .iter()
                .filter_map(|limit| {
                    ScopeLimit::parse(limit.get_ref())
                        .map_err(|e| case_problems.push(problem(limit.span().start, e.to_string())))
                        .ok()
                })
                .collect::<Vec<_>>()
        });
        let expected = match parse_scopes(case.expect.get_ref().values()) {
            Ok(expected) => {
                let mut expected: Vec<String> = expected.iter().map(ToString::to_string).collect();
                expected.sort();
                expected
            }
            Err(e) => {
                case_problems.push(problem(case.expect.span().start, format!("`expect`: {e}")));
                Vec::new()
            }
        };
        let claims = match case.claims.map(table_to_json) {
            Some(Ok(Value::Object(map))) => Some(map),
            Some(Ok(_)) | None => None,
            Some(Err(message)) => {
                case_problems.push(problem(start, message));
                None
            }
        };
        if !case_problems.is_empty() {
            problems.extend(case_problems);
            continue;
        }
        let name = case.name.unwrap_or_else(|| {
            scopes
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        });
        cases.push(PolicyTestCase {
            location: format!("{file}:{header}"),
            name,
            account: case.account,
            groups: case.groups,
            kind,
            scopes,
            limits,
            expected,
            claims,
            workload,
        });
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}
