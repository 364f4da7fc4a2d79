// Tests of sae::models::SentimentLexicon, vader_words and tally_valences
// (include/sae/models/sentiment_lexicon.hpp) on the shipped VADER lexicon
// (examples/data/lexicon/vader_lexicon.txt) and on small lexicons written here.
// Expected values are read off the lexicon file by hand (the line numbers are quoted) and
// derived by hand from VADER 3.3.2's rules (SentiText._strip_punc_if_word).

#include <sae/models/sentiment_lexicon.hpp>

#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace test_sentiment_lexicon_cases {

using sae::models::SentimentLexicon;
using sae::models::tally_valences;
using sae::models::vader_words;
using Catch::Matchers::Contains;
using Catch::Matchers::WithinAbs;
using Words = std::vector<std::string>;

namespace {

const SentimentLexicon& vader() {
    static const SentimentLexicon lexicon = SentimentLexicon::load(SAE_DATA_DIR "/lexicon/vader_lexicon.txt");
    return lexicon;
}

double valence_of(const SentimentLexicon& lexicon, const std::string& word) {
    const std::optional<double> v = lexicon.valence(word);
    REQUIRE(v.has_value());
    return *v;
}

}  // namespace

TEST_CASE("the shipped VADER lexicon: entries, duplicates and look-up", "[sentiment_lexicon]") {
    const SentimentLexicon& lexicon = vader();
    // 7,520 lines; 14 words are listed twice (:-p d: d= fav lmao lol muah o.o ok sob x-d
    // x-p xd xp), so 7,506 distinct words.
    CHECK(lexicon.size() == 7506);
    CHECK(lexicon.entries().front().word == "$:");  // line 1: "$:\t-1.5\t..."
    CHECK_THAT(lexicon.entries().front().valence, WithinAbs(-1.5, 0.0));
    CHECK_THAT(valence_of(lexicon, "hate"), WithinAbs(-2.7, 1e-12));   // line 3589
    CHECK_THAT(valence_of(lexicon, "kill"), WithinAbs(-3.7, 1e-12));   // line 4263
    CHECK_THAT(valence_of(lexicon, "love"), WithinAbs(3.2, 1e-12));    // line 4450
    CHECK_THAT(valence_of(lexicon, ":)"), WithinAbs(2.0, 1e-12));
    // Listed twice: the later line wins, as in VADER's dict (ok: line 352 1.6, line 4895 1.2;
    // sob: line 385 -2.8, line 6188 -1.0).
    CHECK_THAT(valence_of(lexicon, "ok"), WithinAbs(1.2, 1e-12));
    CHECK_THAT(valence_of(lexicon, "sob"), WithinAbs(-1.0, 1e-12));
    // VADER looks words up lower-cased.
    CHECK_THAT(valence_of(lexicon, "HaTe"), WithinAbs(-2.7, 1e-12));
    CHECK_FALSE(lexicon.valence("the").has_value());
    CHECK_FALSE(lexicon.valence("").has_value());
}

TEST_CASE("vader_words follows VADER's split and punctuation stripping", "[sentiment_lexicon]") {
    // Stripped to <= 2 characters -> the piece stays whole (":)", "ok,", "né,": "né" has
    // two code points); otherwise both ends lose their ASCII punctuation.
    CHECK(vader_words("I hate... war!! :) ok, the \"dead\" fool-- can't :-( na\xC3\xAFve, n\xC3\xA9, x") ==
          Words{"I", "hate", "war", ":)", "ok,", "the", "dead", "fool", "can't", ":-(", "na\xC3\xAFve",
                "n\xC3\xA9,", "x"});
    // Python's str.split() whitespace: U+001F, U+00A0, U+2009, U+3000 separate; U+200B does not.
    CHECK(vader_words(" Bad\x1F" "day\xC2\xA0" "for\xE2\x80\x89" "all\xE3\x80\x80" "zero\xE2\x80\x8Bwidth\n") ==
          Words{"Bad", "day", "for", "all", "zero\xE2\x80\x8Bwidth"});
    CHECK(vader_words("").empty());
    CHECK(vader_words(" \t\r\n").empty());
    CHECK(vader_words("!!!") == Words{"!!!"});
}

TEST_CASE("tally_valences counts words, rated words and strongly negative words", "[sentiment_lexicon]") {
    // Words: I hate this war it is a stupid and evil war (11). Rated: hate -2.7, war -2.9,
    // stupid -2.4, evil -3.4, war -2.9 (5), sum -14.3; at or below -2.0: all 5; at or
    // below -3.0: evil only.
    const std::string text = "I hate this war, it is a stupid and evil war!";
    const sae::models::TextValence strong = tally_valences(vader(), text, -2.0);
    CHECK(strong.word_count == 11);
    CHECK(strong.rated_count == 5);
    CHECK(strong.negative_count == 5);
    CHECK_THAT(strong.valence_sum, WithinAbs(-14.3, 1e-9));
    CHECK_THAT(strong.negative_rate(), WithinAbs(5.0 / 11.0, 1e-15));
    CHECK(tally_valences(vader(), text, -3.0).negative_count == 1);
    CHECK(tally_valences(vader(), "", -2.0).negative_rate() == 0.0);
    CHECK_THROWS_AS(tally_valences(vader(), text, std::nan("")), sae::config_error);
}

TEST_CASE("a small lexicon file: format details", "[sentiment_lexicon]") {
    const sae::test::TempDir dir("lexicon");
    // CRLF, a blank line, '+', surrounding blanks, extra fields, a repeated word, no final newline.
    const std::string path =
        dir.file("small.txt", "good\t2.0\t0.5\t[2, 2]\r\n\n  meh\t+0.5 \ngood\t1.5\nawful\t-3.25");
    const SentimentLexicon lexicon = SentimentLexicon::load(path);
    REQUIRE(lexicon.size() == 3);
    CHECK(lexicon.entries()[0].word == "good");
    CHECK(lexicon.entries()[1].word == "meh");
    CHECK(lexicon.entries()[2].word == "awful");
    CHECK(valence_of(lexicon, "good") == 1.5);
    CHECK(valence_of(lexicon, "meh") == 0.5);
    CHECK(valence_of(lexicon, "Awful") == -3.25);
}

TEST_CASE("bad lexicon files are io_errors naming the file and line", "[sentiment_lexicon]") {
    const sae::test::TempDir dir("lexicon_bad");
    const auto fails_with = [&](const std::string& contents, const std::string& fragment) {
        const std::string path = dir.file("bad.txt", contents);
        CHECK_THROWS_WITH(SentimentLexicon::load(path), Contains(path) && Contains(fragment));
        CHECK_THROWS_AS(SentimentLexicon::load(path), sae::io_error);
    };
    fails_with("good\t1.0\nbad -1.0\n", "line 2: expected 'word<TAB>valence'");
    fails_with("\t1.0\n", "line 1: expected");  // the leading TAB is stripped: no word, no TAB
    fails_with("good\tgreat\n", "line 1: valence 'great' is not a finite number");
    fails_with("good\t1.5x\n", "valence '1.5x'");
    fails_with("good\t\n", "line 1: expected");  // the trailing TAB is stripped with the blanks
    fails_with("good\tnan\n", "valence 'nan'");
    fails_with("good\tinf\n", "valence 'inf'");
    fails_with("", "holds no entries");
    fails_with("\n \n", "holds no entries");
    CHECK_THROWS_AS(SentimentLexicon::load(dir.file("missing.txt")), sae::io_error);
    CHECK_THROWS_WITH(SentimentLexicon::parse("x\n", "in-memory lexicon"), Contains("in-memory lexicon: line 1"));
}

}  // namespace test_sentiment_lexicon_cases
