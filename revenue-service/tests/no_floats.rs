//! Money is never a float (SPEC §6): no `f32` or `f64` appears in the
//! revenue service's source. (Clippy's `float_arithmetic` is denied in the
//! crate as well; this also catches float types in signatures and fields.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn no_float_types_in_the_revenue_service() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut stack = vec![src];
    let mut checked = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or_default();
                    let floats = code
                        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                        .any(|word| word == "f32" || word == "f64");
                    assert!(!floats, "{}:{}: {line}", path.display(), n + 1);
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "checked {checked} files");
}
