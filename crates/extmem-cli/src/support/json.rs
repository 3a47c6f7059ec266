//! Every `--json` output (and JSON file) of the CLI carries `schema_version`: a reader checks
//! it before trusting the fields. It grows by one when a field is removed, renamed or changes
//! meaning; added fields keep it.

/// The schema version of the CLI's JSON outputs.
pub const SCHEMA_VERSION: u32 = 1;

/// `value` (an object) with `schema_version` added, pretty-printed.
pub fn to_string(mut value: serde_json::Value) -> String {
    if let Some(object) = value.as_object_mut() {
        object.insert("schema_version".into(), SCHEMA_VERSION.into());
    }
    serde_json::to_string_pretty(&value).expect("a JSON value serialises")
}

/// Prints `value` with its schema version on stdout.
pub fn print(value: serde_json::Value) {
    println!("{}", to_string(value));
}

#[cfg(test)]
mod tests {
    #[test]
    fn outputs_carry_the_schema_version() {
        let v: serde_json::Value = serde_json::from_str(&super::to_string(serde_json::json!({ "a": 1 }))).unwrap();
        assert_eq!(v["schema_version"], super::SCHEMA_VERSION);
        assert_eq!(v["a"], 1);
    }
}
