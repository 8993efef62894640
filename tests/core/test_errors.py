from turnus.core.errors import Conflict, NotFound, ValidationFailed, problem_for
from turnus.engine.errors import InvalidAmount, InvalidTransition, TurnusError


def test_a_validation_error_becomes_a_422_problem_naming_the_field():
    body = problem_for(ValidationFailed("quantity must not be negative", field="quantity")).as_dict()
    assert body["status"] == 422
    assert body["code"] == "validation_failed"
    assert body["errors"] == [
        {"field": "quantity", "message": "quantity must not be negative", "code": "validation_failed"}
    ]
    assert body["type"].endswith("/validation_failed")


def test_engine_errors_keep_their_own_stable_codes():
    problem = problem_for(InvalidAmount("amount must be an exact decimal", field="amount"))
    assert (problem.status, problem.code) == (422, "invalid_amount")


def test_an_invalid_transition_is_a_409_conflict():
    problem = problem_for(InvalidTransition("a cancelled subscription cannot be paused"))
    assert problem.status == 409
    assert problem.errors == ()


def test_not_found_and_conflict_map_to_404_and_409():
    assert problem_for(NotFound("no such customer")).status == 404
    assert problem_for(Conflict("already finalized")).status == 409


def test_an_unclassified_error_is_a_400_and_can_carry_an_instance():
    body = problem_for(TurnusError("bad", code="malformed"), instance="/v1/x").as_dict()
    assert (body["status"], body["code"], body["instance"]) == (400, "malformed", "/v1/x")
