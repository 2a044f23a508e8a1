"""An exponential moving average of the weights (Polyak averaging), evaluated instead of the raw
weights when `train.ema_decay` is set."""

import paddle

from ..models.weights import check_state_fits, load_state_dict_strict


class ModelEma:
    """Shadow weights updated as ema = decay * ema + (1 - decay) * weights after each step."""

    def __init__(self, model: paddle.nn.Layer, decay: float):
        self.decay = decay
        self.shadow = {name: value.detach().clone() for name, value in model.state_dict().items()}

    @paddle.no_grad()
    def update(self, model: paddle.nn.Layer):
        for name, value in model.state_dict().items():
            self.shadow[name].set_value(self.shadow[name] * self.decay + value * (1.0 - self.decay))

    def state_dict(self) -> dict:
        return dict(self.shadow)

    def set_state_dict(self, state: dict, source="the EMA weights"):
        """Restore saved shadow weights; they must be the model's keys and shapes exactly."""
        check_state_fits(state, {k: list(v.shape) for k, v in self.shadow.items()}, source,
                         "resume with the config the run was started with")
        for name, value in state.items():
            self.shadow[name].set_value(paddle.to_tensor(value))

    def swap_into(self, model: paddle.nn.Layer) -> dict:
        """Put the averaged weights into `model`; return its own weights to restore later."""
        own = {name: value.detach().clone() for name, value in model.state_dict().items()}
        load_state_dict_strict(model, self.shadow, "the EMA weights")
        return own
