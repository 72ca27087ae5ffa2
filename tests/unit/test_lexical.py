"""The BM25 tokenizer: what a technician types must meet what the knowledge base holds."""

from agent.lexical import TITLE_REPEAT, document_tokens, fold_accents, term_frequencies, tokenize


def test_tokens_are_lower_cased_and_accent_folded():
    assert tokenize("Línea de Producción: TEMPERATURA") == ["linea", "produccion", "temperatura"]
    assert fold_accents("Ñandú café") == "Nandu cafe"


def test_english_and_spanish_stopwords_are_dropped():
    assert tokenize("the motor of the conveyor is hot") == ["motor", "conveyor", "hot"]
    assert tokenize("el motor de la cinta está caliente") == [
        "motor",
        "cinta",
        "caliente",
    ]  # "está" folds to a stopword


def test_error_code_is_kept_whole_and_by_its_number():
    tokens = tokenize("Alarm E-4021 on line 3")
    assert "e-4021" in tokens
    assert "4021" in tokens
    assert "3" in tokens  # digits are kept even when short


def test_error_code_written_differently_still_shares_its_number():
    assert set(tokenize("E-4021")) & set(tokenize("e4021")) == {"4021"}


def test_class_and_method_names_split_into_camel_case_parts():
    tokens = tokenize("NPE in DFSClient.getFileInfo")
    assert {"npe", "dfsclient", "dfs", "client", "getfileinfo", "get", "file", "info"} <= set(tokens)
    assert "dfsclient.getfileinfo" in tokens


def test_dotted_property_matches_whole_or_by_parts():
    tokens = tokenize("set dfs.replication to 3")
    assert "dfs.replication" in tokens and "dfs" in tokens and "replication" in tokens


def test_blobs_longer_than_a_word_are_not_indexed():
    blob = "a" * 80
    assert tokenize(f"hash {blob} end") == ["hash", "end"]


def test_single_letters_are_dropped_but_not_digits():
    assert tokenize("x y 7 z") == ["7"]


def test_title_counts_several_times_in_an_indexed_entry():
    tokens = document_tokens("Motor overheating", "fan blocked")
    assert term_frequencies(tokens) == {"motor": TITLE_REPEAT, "overheating": TITLE_REPEAT, "fan": 1, "blocked": 1}


def test_empty_and_punctuation_only_text_has_no_tokens():
    assert tokenize("") == []
    assert tokenize(" -- ... !!! ") == []
