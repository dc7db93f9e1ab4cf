//! Bar charts of rates, drawn on the server as inline SVG: no script,
//! nothing loaded from elsewhere, a `<title>` for the chart and for every
//! bar, so that a screen reader (and a mouse hover) reads the figures.

use crate::domain::rates::Rate;
use crate::pages::{Html, Lang, Text};

/// One series of bars: its name and colour.
pub struct Series<'a> {
    pub name: &'a Text,
    /// A CSS colour written in lephi's code.
    pub colour: &'static str,
}

/// One group of bars along the x axis: its label and a rate per series
/// (`None` when there was nothing to divide by).
pub struct Column {
    pub label: String,
    pub rates: Vec<Option<Rate>>,
}

const WIDTH: u32 = 640;
const HEIGHT: u32 = 260;
const LEFT: u32 = 44;
const TOP: u32 = 16;
const BOTTOM: u32 = 40;

fn percent(rate: Option<Rate>) -> f64 {
    rate.and_then(|r| r.display().parse::<f64>().ok())
        .unwrap_or(0.0)
        .clamp(0.0, 100.0)
}

fn num(value: f64) -> String {
    format!("{value:.1}")
}

/// A bar chart of `columns`, each with one bar per series, on a 0–100 %
/// axis; `id` makes the chart's title addressable.
pub fn rate_chart(
    lang: Lang,
    id: &'static str,
    title: &str,
    series: &[Series<'_>],
    columns: &[Column],
) -> Html {
    let mut html = Html::new();
    html.raw(
        "<figure class=\"chart\"><svg role=\"img\" viewBox=\"0 0 640 260\" aria-labelledby=\"",
    )
    .raw(id)
    .raw("\"><title id=\"")
    .raw(id)
    .raw("\">")
    .text(title)
    .raw("</title>");
    let plot_height = f64::from(HEIGHT - TOP - BOTTOM);
    let y_of = |p: f64| f64::from(TOP) + plot_height * (1.0 - p / 100.0);
    for tick in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let y = num(y_of(tick));
        html.raw("<line x1=\"44\" x2=\"636\" stroke=\"#c4c8ce\" stroke-width=\"1\" y1=\"")
            .text(&y)
            .raw("\" y2=\"")
            .text(&y)
            .raw("\"/><text x=\"38\" text-anchor=\"end\" font-size=\"11\" fill=\"#4a4f57\" y=\"")
            .text(&num(y_of(tick) + 4.0))
            .raw("\">")
            .text(&match lang {
                Lang::Vi => format!("{tick:.0} %"),
                Lang::En => format!("{tick:.0}%"),
            })
            .raw("</text>");
    }
    let plot_width = f64::from(WIDTH - LEFT - 4);
    let slot = plot_width / columns.len().max(1) as f64;
    let bars = series.len().max(1) as f64;
    let bar_width = (slot * 0.8 / bars).min(48.0);
    for (i, column) in columns.iter().enumerate() {
        let start = f64::from(LEFT) + slot * i as f64 + (slot - bar_width * bars) / 2.0;
        for (j, (rate, series)) in column.rates.iter().zip(series).enumerate() {
            let p = percent(*rate);
            let x = start + bar_width * j as f64;
            let shown = rate.map_or_else(|| "—".to_owned(), |r| super::dashboard::percent(r, lang));
            html.raw("<rect fill=\"")
                .raw(series.colour)
                .raw("\" x=\"")
                .text(&num(x))
                .raw("\" y=\"")
                .text(&num(y_of(p)))
                .raw("\" width=\"")
                .text(&num((bar_width - 2.0).max(1.0)))
                .raw("\" height=\"")
                .text(&num(y_of(0.0) - y_of(p)))
                .raw("\"><title>")
                .text(&column.label)
                .raw(" – ")
                .t(lang, series.name)
                .raw(": ")
                .text(&shown)
                .raw("</title></rect>");
        }
        html.raw("<text text-anchor=\"middle\" font-size=\"11\" fill=\"#1a1a1a\" x=\"")
            .text(&num(f64::from(LEFT) + slot * (i as f64 + 0.5)))
            .raw("\" y=\"")
            .text(&num(f64::from(HEIGHT - BOTTOM + 16)))
            .raw("\">")
            .text(&column.label)
            .raw("</text>");
    }
    html.raw("</svg><figcaption class=\"legend\">");
    for series in series {
        html.raw("<span><span class=\"swatch\" style=\"background:")
            .raw(series.colour)
            .raw("\"></span>")
            .t(lang, series.name)
            .raw("</span>");
    }
    html.raw("</figcaption></figure>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::text;

    #[test]
    fn a_chart_names_every_bar_and_escapes_labels() {
        let svg = rate_chart(
            Lang::En,
            "c1",
            "Rate <by> month",
            &[Series {
                name: &text!("theo số tiền", "by amount"),
                colour: "#0b5cad",
            }],
            &[
                Column {
                    label: "2026-10".into(),
                    rates: vec![Rate::of(1, 2)],
                },
                Column {
                    label: "<b>".into(),
                    rates: vec![None],
                },
            ],
        )
        .into_string();
        assert!(svg.contains("<title id=\"c1\">Rate &lt;by&gt; month</title>"));
        assert!(svg.contains("<title>2026-10 – by amount: 50.00%</title>"));
        assert!(svg.contains("&lt;b&gt; – by amount: —"));
        assert!(!svg.contains("<b>"));
    }
}
