//! Hints for answering a query from an index instead of scanning every item.

use std::cmp::Ordering;

use crate::ast::{Expr, Op, Path, Value};
use crate::eval::compare_numbers;

/// What the top-level conjunction of an expression requires of one field.
///
/// Every part is a *necessary* condition: an item can only match if its field satisfies it, under
/// the comparison rules of [`Expr::matches`] (so an equality on `"5"` is also met by the JSON
/// number `5`, and a numeric bound by a numeric string). They are not sufficient: the rest of the
/// expression is not represented, so candidates found through an index must always be re-checked
/// with [`Expr::matches`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// The field.
    pub path: Path,
    /// `Some(values)`: the field equals one of `values`. Comes from an `==` (one value) or an
    /// `in` (its items) on this path; when there are several, the one with the fewest values.
    /// `Some(vec![])` means no item can match.
    pub one_of: Option<Vec<Value>>,
    /// The field is above this bound (`>`, or `>=` when inclusive). When several bounds of the
    /// same type (number or string) apply, the tightest; between a number and a string bound,
    /// the first.
    pub lower: Option<Bound>,
    /// The field is below this bound (`<`, or `<=` when inclusive); chosen like `lower`.
    pub upper: Option<Bound>,
}

/// One end of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    /// A [`Value::Number`] or [`Value::Str`].
    pub value: Value,
    /// Whether the bound itself is in the range (`<=`, `>=`).
    pub inclusive: bool,
}

impl Expr {
    /// Per field, the equality values and range bounds that the top-level conjunction imposes
    /// and that an index could use, in order of the fields' first appearance.
    ///
    /// Only `==` / `eq`, `in`, `<`, `<=`, `>` and `>=` that are operands of the top-level `and`
    /// (through nested parenthesised `and`s too), or the whole expression, count. `or`, `!=`,
    /// `not_in`, `contains` and `exists` give nothing, and an expression whose top level is an
    /// `or` gives an empty list: the caller scans.
    ///
    /// The constraints are necessary, not sufficient: **always re-check every candidate with
    /// [`Expr::matches`]**.
    ///
    /// ```
    /// use ferrosync_query::{parse, Bound, Path, Value};
    ///
    /// let expr = parse(r#"data.team == "eng" and data.age >= 30 and data.x != "y""#)?;
    /// let constraints = expr.constraints();
    /// assert_eq!(constraints.len(), 2);
    /// assert_eq!(constraints[0].path, Path::Data(vec!["team".into()]));
    /// assert_eq!(constraints[0].one_of, Some(vec![Value::Str("eng".into())]));
    /// assert_eq!(
    ///     constraints[1].lower,
    ///     Some(Bound { value: Value::Number(30.into()), inclusive: true })
    /// );
    /// # Ok::<(), ferrosync_query::QueryError>(())
    /// ```
    pub fn constraints(&self) -> Vec<Constraint> {
        let mut constraints = Vec::new();
        collect(self, &mut constraints);
        constraints
    }
}

fn collect(expr: &Expr, out: &mut Vec<Constraint>) {
    let (path, op, value) = match expr {
        Expr::And(items) => {
            for item in items {
                collect(item, out);
            }
            return;
        }
        Expr::Compare { path, op, value, .. } => (path, *op, value),
        Expr::Or(_) | Expr::Exists { .. } => return,
    };
    let usable = match op {
        Op::Eq => !matches!(value, Value::Array(_)),
        Op::In => matches!(value, Value::Array(_)),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => matches!(value, Value::Number(_) | Value::Str(_)),
        Op::NotEq | Op::NotIn | Op::Contains => false,
    };
    if !usable {
        return;
    }
    let index = match out.iter().position(|c| c.path == *path) {
        Some(index) => index,
        None => {
            out.push(Constraint { path: path.clone(), one_of: None, lower: None, upper: None });
            out.len() - 1
        }
    };
    let constraint = &mut out[index];
    match op {
        Op::Eq | Op::In => {
            let values = match value {
                Value::Array(items) => items.clone(),
                scalar => vec![scalar.clone()],
            };
            if constraint.one_of.as_ref().is_none_or(|current| values.len() < current.len()) {
                constraint.one_of = Some(values);
            }
        }
        Op::Gt | Op::Ge => {
            let bound = Bound { value: value.clone(), inclusive: op == Op::Ge };
            tighten(&mut constraint.lower, bound, Ordering::Greater);
        }
        Op::Lt | Op::Le => {
            let bound = Bound { value: value.clone(), inclusive: op == Op::Le };
            tighten(&mut constraint.upper, bound, Ordering::Less);
        }
        Op::NotEq | Op::NotIn | Op::Contains => {}
    }
}

/// Keeps the tighter of two bounds: the one further in the `inward` direction, or the exclusive
/// one when they are equal. Bounds of different types keep the current one.
fn tighten(current: &mut Option<Bound>, new: Bound, inward: Ordering) {
    let Some(old) = current else {
        *current = Some(new);
        return;
    };
    let ordering = match (&new.value, &old.value) {
        (Value::Number(a), Value::Number(b)) => compare_numbers(a, b),
        (Value::Str(a), Value::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        _ => None,
    };
    let tighter = match ordering {
        Some(Ordering::Equal) => old.inclusive && !new.inclusive,
        Some(ordering) => ordering == inward,
        None => false,
    };
    if tighter {
        *current = Some(new);
    }
}
